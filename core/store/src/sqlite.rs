//! The embedded store: one SQLite file (WAL mode) or an in-memory database.
//!
//! SQLite is synchronous, so every operation runs on tokio's blocking pool
//! (`spawn_blocking`) holding the one connection behind a mutex: writes are serialized
//! anyway by SQLite, and a single connection keeps in-memory databases coherent.
//! The schema is in [`crate::migrations::SQLITE`].

use crate::alerts::{self, AlertColumns, AlertPage, AlertQuery, AlertRecord, AlertState};
use crate::filter::{self, Dialect, Param};
use crate::incidents::{self, IncidentColumns, IncidentQuery};
use crate::migrations::{self, Migration};
use crate::summary::{self, Summary, SummaryQuery};
use crate::telemetry;
use crate::{CountBy, EventQuery, RetentionReport, Store, StoreError};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params_from_iter};
use soc_model::{Event, Incident, Timestamp};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAME: &str = "sqlite";

/// How long a statement waits for another process's write lock before [`StoreError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQLite [`Store`]. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The file path, or `:memory:`; for error messages.
    addr: Arc<str>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path`, in WAL mode with
    /// `synchronous=NORMAL` (durable at checkpoints, never corrupt; a power cut can lose
    /// the last transactions, which the bus redelivers). Call [`Store::migrate`] next.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let addr = path.display().to_string();
        let open_err = |e: rusqlite::Error| StoreError::Open { addr: addr.clone(), reason: e.to_string() };
        let conn = Connection::open(path).map_err(open_err)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %addr, mode, "sqlite: WAL mode not available, using this journal mode");
        }
        Self::configure(&conn).map_err(open_err)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), addr: addr.into() })
    }

    /// A private in-memory database (gone when the store is dropped): for tests and demos.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let addr = ":memory:".to_string();
        let open_err = |e: rusqlite::Error| StoreError::Open { addr: addr.clone(), reason: e.to_string() };
        let conn = Connection::open_in_memory().map_err(open_err)?;
        Self::configure(&conn).map_err(open_err)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), addr: addr.into() })
    }

    fn configure(conn: &Connection) -> rusqlite::Result<()> {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(())
    }

    /// Runs `f` with the connection on the blocking pool, mapping errors and counting them.
    async fn with_conn<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let r = tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Query("sqlite connection unusable: a previous operation panicked".into()))?;
            f(&mut guard)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Query(format!("sqlite task failed: {e}"))));
        telemetry::track(NAME, op, r)
    }

    /// Maps a rusqlite error: lock contention is transient ([`StoreError::Busy`]).
    fn map_err(addr: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy { addr: addr.to_string(), reason: e.to_string() }
            }
            _ => StoreError::Query(e.to_string()),
        }
    }
}

fn to_values(params: Vec<Param>) -> Vec<Value> {
    params
        .into_iter()
        .map(|p| match p {
            Param::Str(s) => Value::Text(s),
            Param::I64(v) => Value::Integer(v),
            // Not produced for SQLite (flow ids are bit-cast), kept total anyway.
            Param::U64(v) => Value::Integer(v as i64),
            Param::U32(v) => Value::Integer(i64::from(v)),
        })
        .collect()
}

fn applied_versions(conn: &Connection) -> rusqlite::Result<Vec<u32>> {
    let mut st = conn.prepare("SELECT version FROM schema_migrations ORDER BY version")?;
    let rows = st.query_map([], |r| r.get::<_, u32>(0))?;
    rows.collect()
}

fn apply(conn: &mut Connection, m: &Migration) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for stmt in m.statements {
        tx.execute_batch(stmt)?;
    }
    // Filled in the migration's transaction: a failed fill leaves the migration unapplied, to
    // be tried again at the next start, instead of recorded with an empty table.
    if m.version == 3 {
        backfill_alerts(&tx)?;
    }
    tx.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
        rusqlite::params![m.version, Timestamp::now().to_rfc3339()],
    )?;
    tx.commit()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let addr = self.addr.clone();
        self.with_conn("migrate", move |conn| {
            let map = Self::map_err(&addr);
            conn.execute_batch(migrations::sqlite::BOOKKEEPING).map_err(&map)?;
            let applied = applied_versions(conn).map_err(&map)?;
            let mut done = Vec::new();
            for m in migrations::pending(migrations::SQLITE, &applied) {
                tracing::info!(store = NAME, addr = %addr, version = m.version, name = m.name, "applying migration");
                apply(conn, m).map_err(|e| StoreError::Migration { version: m.version, reason: e.to_string() })?;
                done.push(m.version);
            }
            if done.is_empty() {
                tracing::debug!(store = NAME, addr = %addr, "schema up to date");
            } else {
                tracing::info!(store = NAME, addr = %addr, applied = ?done, "migrations applied");
            }
            Ok(done)
        })
        .await
    }

    async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError> {
        telemetry::track(NAME, "insert", crate::require_ids(events))?;
        if events.is_empty() {
            return Ok(());
        }
        // Encode on the async side: cheap, and the closure must own its data.
        let rows: Vec<Vec<Value>> = events.iter().map(row_values).collect();
        let alert_rows: Vec<Vec<Value>> =
            alerts::project_batch(events).iter().map(|a| alert_values(&a.columns())).collect();
        let n = rows.len();
        let addr = self.addr.clone();
        let started = Instant::now();
        self.with_conn("insert", move |conn| {
            let map = Self::map_err(&addr);
            let tx = conn.transaction().map_err(&map)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO events (id, ts_us, day, event_type, sensor, segment, host, \
                         src_ip, src_port, dest_ip, dest_port, proto, flow_id, community_id, json) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    )
                    .map_err(&map)?;
                for row in &rows {
                    st.execute(params_from_iter(row.iter())).map_err(&map)?;
                }
                // A stored alert becomes its next version (triage state kept) unless the
                // new one counts fewer occurrences.
                let mut st = tx
                    .prepare_cached(&format!(
                        "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES ({}) \
                         ON CONFLICT (id) DO UPDATE SET ts_us = excluded.ts_us, day = excluded.day, \
                         kind = excluded.kind, severity = excluded.severity, rule_id = excluded.rule_id, \
                         rule_title = excluded.rule_title, category = excluded.category, \
                         segment = excluded.segment, sensor = excluded.sensor, src_ip = excluded.src_ip, \
                         dest_ip = excluded.dest_ip, host = excluded.host, user = excluded.user, \
                         entities = excluded.entities, tags = excluded.tags, count = excluded.count, \
                         json = excluded.json, version = alerts.version + 1 \
                         WHERE excluded.count >= alerts.count",
                        vec!["?"; ALERT_COLUMN_COUNT].join(", ")
                    ))
                    .map_err(&map)?;
                for row in &alert_rows {
                    st.execute(params_from_iter(row.iter())).map_err(&map)?;
                }
            }
            tx.commit().map_err(&map)
        })
        .await?;
        telemetry::inserted(NAME, n, started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn query_events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let w = filter::build(q, Dialect::Sqlite);
        let sql = format!(
            "SELECT json FROM events WHERE {} ORDER BY {} LIMIT {}",
            w.sql,
            filter::order_by(q),
            q.effective_limit()
        );
        let params = to_values(w.params);
        let addr = self.addr.clone();
        self.with_conn("query", move |conn| {
            let map = Self::map_err(&addr);
            let mut st = conn.prepare_cached(&sql).map_err(&map)?;
            let mut rows = st.query(params_from_iter(params.iter())).map_err(&map)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(&map)? {
                let json: String = row.get(0).map_err(&map)?;
                out.push(crate::decode_event(&json)?);
            }
            Ok(out)
        })
        .await
    }

    async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        let w = filter::build(q, Dialect::Sqlite);
        let sql = format!("SELECT count(*) FROM events WHERE {}", w.sql);
        let params = to_values(w.params);
        let addr = self.addr.clone();
        self.with_conn("count", move |conn| {
            let map = Self::map_err(&addr);
            let n: i64 = conn.query_row(&sql, params_from_iter(params.iter()), |r| r.get(0)).map_err(&map)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn count_by(&self, by: CountBy, q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError> {
        let w = filter::build(q, Dialect::Sqlite);
        let key = filter::group_key(by, Dialect::Sqlite);
        let sql =
            format!("SELECT {key} AS k, count(*) AS c FROM events WHERE {} GROUP BY k ORDER BY c DESC, k ASC", w.sql);
        let params = to_values(w.params);
        let addr = self.addr.clone();
        self.with_conn("count_by", move |conn| {
            let map = Self::map_err(&addr);
            let mut st = conn.prepare_cached(&sql).map_err(&map)?;
            let rows = st
                .query_map(params_from_iter(params.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(&map)?;
            let mut out = Vec::new();
            for row in rows {
                let (k, c) = row.map_err(&map)?;
                out.push((k, u64::try_from(c).unwrap_or(0)));
            }
            Ok(out)
        })
        .await
    }

    async fn drop_days_before(&self, keep_from_day: i64) -> Result<RetentionReport, StoreError> {
        let addr = self.addr.clone();
        let report = self
            .with_conn("retention", move |conn| {
                let map = Self::map_err(&addr);
                let tx = conn.transaction().map_err(&map)?;
                let mut report = RetentionReport::default();
                {
                    let mut st = tx
                        .prepare("SELECT day, count(*) FROM events WHERE day < ?1 GROUP BY day ORDER BY day")
                        .map_err(&map)?;
                    let rows = st
                        .query_map([keep_from_day], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                        .map_err(&map)?;
                    for row in rows {
                        let (day, n) = row.map_err(&map)?;
                        report.days_dropped.push(day);
                        report.rows_dropped += u64::try_from(n).unwrap_or(0);
                    }
                }
                let deleted = tx.execute("DELETE FROM events WHERE day < ?1", [keep_from_day]).map_err(&map)?;
                tx.execute("DELETE FROM alerts WHERE day < ?1", [keep_from_day]).map_err(&map)?;
                tx.commit().map_err(&map)?;
                if deleted as u64 != report.rows_dropped {
                    // Cannot happen inside one transaction; report what was deleted.
                    report.rows_dropped = deleted as u64;
                }
                Ok(report)
            })
            .await?;
        if report.days_dropped.is_empty() {
            tracing::debug!(store = NAME, keep_from_day, "retention: nothing to drop");
        } else {
            tracing::info!(store = NAME, keep_from_day, days = ?report.days_dropped, rows = report.rows_dropped, "retention dropped days");
        }
        Ok(report)
    }

    async fn upsert_incidents(&self, list: &[Incident]) -> Result<(), StoreError> {
        telemetry::track(NAME, "upsert_incidents", incidents::check_incidents(list))?;
        if list.is_empty() {
            return Ok(());
        }
        let rows: Vec<IncidentColumns> = list.iter().map(IncidentColumns::of).collect();
        let addr = self.addr.clone();
        self.with_conn("upsert_incidents", move |conn| {
            let map = Self::map_err(&addr);
            let tx = conn.transaction().map_err(&map)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO incidents (incident_id, version, updated_us, first_seen_us, last_seen_us, \
                         severity, status, owner, segments, entities, json) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                         ON CONFLICT (incident_id) DO UPDATE SET version = excluded.version, \
                         updated_us = excluded.updated_us, first_seen_us = excluded.first_seen_us, \
                         last_seen_us = excluded.last_seen_us, severity = excluded.severity, \
                         status = excluded.status, owner = excluded.owner, segments = excluded.segments, \
                         entities = excluded.entities, json = excluded.json \
                         WHERE excluded.version > incidents.version",
                    )
                    .map_err(&map)?;
                for r in &rows {
                    st.execute(rusqlite::params![
                        r.incident_id,
                        i64::try_from(r.version).unwrap_or(i64::MAX),
                        r.updated_us,
                        r.first_seen_us,
                        r.last_seen_us,
                        i64::from(r.severity),
                        r.status,
                        r.owner,
                        incidents::sqlite_list(&r.segments),
                        incidents::sqlite_list(&r.entities),
                        r.json,
                    ])
                    .map_err(&map)?;
                }
            }
            tx.commit().map_err(&map)
        })
        .await
    }

    async fn get_incident(&self, incident_id: &str) -> Result<Option<Incident>, StoreError> {
        let id = incident_id.to_string();
        let addr = self.addr.clone();
        self.with_conn("get_incident", move |conn| {
            let map = Self::map_err(&addr);
            let json: Option<String> = conn
                .query_row("SELECT json FROM incidents WHERE incident_id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(&map)?;
            json.map(|j| incidents::decode_incident(&j)).transpose()
        })
        .await
    }

    async fn get_incidents(&self, ids: &[String]) -> Result<HashMap<String, Incident>, StoreError> {
        let ids = incidents::distinct_ids(ids);
        let addr = self.addr.clone();
        self.with_conn("get_incidents", move |conn| {
            let map = Self::map_err(&addr);
            let mut out = HashMap::with_capacity(ids.len());
            for chunk in ids.chunks(crate::INCIDENT_CHUNK) {
                let sql = format!(
                    "SELECT incident_id, json FROM incidents WHERE incident_id IN ({})",
                    vec!["?"; chunk.len()].join(", ")
                );
                let mut st = conn.prepare_cached(&sql).map_err(&map)?;
                let rows = st
                    .query_map(params_from_iter(chunk.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(&map)?;
                for row in rows {
                    let (id, json) = row.map_err(&map)?;
                    out.insert(id, incidents::decode_incident(&json)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn query_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let w = incidents::build(q, Dialect::Sqlite);
        let sql = format!(
            "SELECT json FROM incidents WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            w.sql,
            incidents::ORDER,
            q.effective_limit(),
            q.offset
        );
        let params = to_values(w.params);
        let addr = self.addr.clone();
        self.with_conn("query_incidents", move |conn| {
            let map = Self::map_err(&addr);
            let mut st = conn.prepare_cached(&sql).map_err(&map)?;
            let rows = st.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0)).map_err(&map)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(incidents::decode_incident(&row.map_err(&map)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn count_incidents(&self, q: &IncidentQuery) -> Result<u64, StoreError> {
        let w = incidents::build(q, Dialect::Sqlite);
        let sql = format!("SELECT count(*) FROM incidents WHERE {}", w.sql);
        let params = to_values(w.params);
        let addr = self.addr.clone();
        self.with_conn("count_incidents", move |conn| {
            let n: i64 =
                conn.query_row(&sql, params_from_iter(params.iter()), |r| r.get(0)).map_err(Self::map_err(&addr))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn insert_forwarding(&self, records: &[Event]) -> Result<(), StoreError> {
        telemetry::track(NAME, "insert_forwarding", incidents::check_forwarding(records))?;
        let rows: Vec<(String, i64, String, i64, &'static str, String)> = records
            .iter()
            .filter_map(|e| {
                let f = e.forwarding.as_ref()?;
                Some((
                    e.id.clone().unwrap_or_default(),
                    e.timestamp.unix_micros(),
                    f.incident_id.clone(),
                    i64::try_from(f.incident_version).unwrap_or(i64::MAX),
                    f.state.as_str(),
                    String::from_utf8(e.to_json()).unwrap_or_default(),
                ))
            })
            .collect();
        let addr = self.addr.clone();
        self.with_conn("insert_forwarding", move |conn| {
            let map = Self::map_err(&addr);
            let tx = conn.transaction().map_err(&map)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO forwarding (id, ts_us, incident_id, incident_version, state, json) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(&map)?;
                for r in &rows {
                    st.execute(rusqlite::params![r.0, r.1, r.2, r.3, r.4, r.5]).map_err(&map)?;
                }
            }
            tx.commit().map_err(&map)
        })
        .await
    }

    async fn query_forwarding(&self, incident_id: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError> {
        let limit = if limit == 0 { crate::MAX_LIMIT } else { limit.min(crate::MAX_LIMIT) };
        let id = incident_id.map(str::to_string);
        let addr = self.addr.clone();
        self.with_conn("query_forwarding", move |conn| {
            let map = Self::map_err(&addr);
            let (sql, params): (String, Vec<Value>) = match id {
                Some(id) => (
                    format!(
                        "SELECT json FROM forwarding WHERE incident_id = ?1 ORDER BY ts_us DESC, id DESC LIMIT {limit}"
                    ),
                    vec![Value::Text(id)],
                ),
                None => (format!("SELECT json FROM forwarding ORDER BY ts_us DESC, id DESC LIMIT {limit}"), vec![]),
            };
            let mut st = conn.prepare_cached(&sql).map_err(&map)?;
            let rows = st.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(0)).map_err(&map)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(crate::decode_event(&row.map_err(&map)?)?);
            }
            Ok(out)
        })
        .await
    }

    async fn search(&self, q: &crate::search::SearchQuery) -> Result<crate::search::SearchResult, StoreError> {
        let c = telemetry::track(NAME, "search", crate::search::compile(q, Dialect::Sqlite))?;
        let (sql, counts, params) = (c.sql, c.counts, to_values(c.params));
        let addr = self.addr.clone();
        self.with_conn("search", move |conn| {
            let map = Self::map_err(&addr);
            let mut st = conn.prepare(&sql).map_err(&map)?;
            let mut rows = st.query(params_from_iter(params.iter())).map_err(&map)?;
            let (mut events, mut groups) = (Vec::new(), Vec::new());
            while let Some(row) = rows.next().map_err(&map)? {
                if counts {
                    let (k, n): (String, i64) = (row.get(0).map_err(&map)?, row.get(1).map_err(&map)?);
                    groups.push((k, u64::try_from(n).unwrap_or(0)));
                } else {
                    events.push(crate::decode_event(&row.get::<_, String>(0).map_err(&map)?)?);
                }
            }
            Ok(if counts {
                crate::search::SearchResult::Counts(groups)
            } else {
                crate::search::SearchResult::Events(events)
            })
        })
        .await
    }

    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        let fixed = alerts::build_fixed(q, Dialect::Sqlite);
        let mut params = fixed.params;
        let mut where_sql = fixed.sql;
        if let Some(state) = alerts::build_state(q, Dialect::Sqlite, "status") {
            where_sql = format!("{where_sql} AND {}", state.sql);
            params.extend(state.params);
        }
        let page_sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE {where_sql} ORDER BY {} LIMIT {} OFFSET {}",
            alerts::order_by(q),
            q.effective_limit(),
            q.offset
        );
        let count_sql = format!("SELECT count(*) FROM alerts WHERE {where_sql}");
        let params = to_values(params);
        let addr = self.addr.clone();
        let q = q.clone();
        self.with_conn("query_alerts", move |conn| {
            let map = Self::map_err(&addr);
            let total: i64 = conn.query_row(&count_sql, params_from_iter(params.iter()), |r| r.get(0)).map_err(&map)?;
            let mut st = conn.prepare_cached(&page_sql).map_err(&map)?;
            let rows = st.query_map(params_from_iter(params.iter()), alert_columns).map_err(&map)?;
            let mut items = Vec::new();
            for row in rows {
                let mut r = row.map_err(&map)?.into_record()?;
                r.state.status = q.effective_status(&r);
                items.push(r);
            }
            Ok(AlertPage { total: u64::try_from(total).unwrap_or(0), items })
        })
        .await
    }

    async fn update_alert(&self, id: &str, state: &AlertState) -> Result<Option<AlertRecord>, StoreError> {
        telemetry::track(NAME, "update_alert", alerts::check_state(state))?;
        let id = id.to_string();
        let state = state.clone();
        let addr = self.addr.clone();
        self.with_conn("update_alert", move |conn| {
            let map = Self::map_err(&addr);
            let tx = conn.transaction().map_err(&map)?;
            let n = tx
                .execute(
                    "UPDATE alerts SET status = ?2, owner = ?3, verdict = ?4, incident_id = ?5, version = version + 1 \
                     WHERE id = ?1",
                    rusqlite::params![
                        id,
                        state.status,
                        state.owner.clone().unwrap_or_default(),
                        state.verdict.clone().unwrap_or_default(),
                        state.incident_id.clone().unwrap_or_default()
                    ],
                )
                .map_err(&map)?;
            if n == 0 {
                return Ok(None);
            }
            let row = tx
                .query_row(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"), [&id], alert_columns)
                .map_err(&map)?;
            tx.commit().map_err(&map)?;
            Ok(Some(row.into_record()?))
        })
        .await
    }

    async fn summary(&self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        telemetry::track(NAME, "summary", summary::check(q))?;
        let base = EventQuery {
            since: q.base.since,
            until: q.base.until,
            segments: q.base.segments.clone(),
            ..Default::default()
        };
        let w = filter::build(&base, Dialect::Sqlite);
        let aq = AlertQuery {
            since: q.base.since,
            until: q.base.until,
            segments: q.base.segments.clone(),
            ..Default::default()
        };
        let aw = alerts::build_fixed(&aq, Dialect::Sqlite);
        let b = q.bucket_micros;
        let top = q.top;
        let counts_sql = format!(
            "SELECT event_type, COALESCE(segment, ''), \
             CASE WHEN event_type IN ('alert', 'detection') THEN (ts_us / {b}) * {b} ELSE 0 END AS b, count(*) \
             FROM events WHERE {} GROUP BY 1, 2, 3",
            w.sql
        );
        let rules_sql = format!(
            "SELECT rule_title, count(*) AS c FROM alerts WHERE {} AND rule_title != '' \
             GROUP BY 1 ORDER BY c DESC, rule_title ASC LIMIT {top}",
            aw.sql
        );
        let talkers_sql = format!(
            "SELECT src_ip, count(*) AS c FROM events WHERE {} AND src_ip IS NOT NULL AND src_ip != '' \
             GROUP BY 1 ORDER BY c DESC, src_ip ASC LIMIT {top}",
            w.sql
        );
        let mut geo = Vec::new();
        for fields in summary::GEO_FIELDS {
            let mut parts = Vec::new();
            let mut params = Vec::new();
            for f in fields {
                let field = crate::search::Field::parse(f).map_err(StoreError::Invalid)?;
                let v = crate::search::value_expr(&field, Dialect::Sqlite, &mut params)?;
                parts.push(format!(
                    "SELECT CAST({v} AS TEXT) AS k FROM events WHERE {} AND instr(json, '\"geoip\"') > 0",
                    w.sql
                ));
                params.extend(w.params.iter().cloned());
            }
            let sql = format!(
                "SELECT k, count(*) AS c FROM ({}) WHERE k IS NOT NULL AND k != '' GROUP BY k ORDER BY c DESC, k ASC LIMIT {top}",
                parts.join(" UNION ALL ")
            );
            geo.push((sql, to_values(params)));
        }
        let wp = to_values(w.params);
        let ap = to_values(aw.params);
        let addr = self.addr.clone();
        self.with_conn("summary", move |conn| {
            let map = Self::map_err(&addr);
            let mut out = Summary::default();
            let mut per_ts: std::collections::BTreeMap<(String, String), u64> = Default::default();
            let mut per_bucket: std::collections::BTreeMap<i64, u64> = Default::default();
            {
                let mut st = conn.prepare(&counts_sql).map_err(&map)?;
                let rows = st
                    .query_map(params_from_iter(wp.iter()), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
                    })
                    .map_err(&map)?;
                for row in rows {
                    let (t, s, b, c) = row.map_err(&map)?;
                    let c = u64::try_from(c).unwrap_or(0);
                    if t == "alert" || t == "detection" {
                        *per_bucket.entry(b).or_default() += c;
                    }
                    *per_ts.entry((t, s)).or_default() += c;
                }
            }
            out.by_type_segment = per_ts.into_iter().map(|((t, s), c)| (t, s, c)).collect();
            out.alerts_over_time = per_bucket.into_iter().collect();
            let list = |sql: &str, p: &[Value]| -> Result<Vec<(String, u64)>, StoreError> {
                let mut st = conn.prepare(sql).map_err(&map)?;
                let rows = st
                    .query_map(params_from_iter(p.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                    .map_err(&map)?;
                let mut v = Vec::new();
                for row in rows {
                    let (k, c) = row.map_err(&map)?;
                    v.push((k, u64::try_from(c).unwrap_or(0)));
                }
                Ok(v)
            };
            out.top_rules = list(&rules_sql, &ap)?;
            out.top_talkers = list(&talkers_sql, &wp)?;
            out.countries = list(&geo[0].0, &geo[0].1)?;
            out.asns = list(&geo[1].0, &geo[1].1)?;
            Ok(out)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let addr = self.addr.clone();
        self.with_conn("ping", move |conn| {
            conn.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).optional().map_err(Self::map_err(&addr))?;
            Ok(())
        })
        .await
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

/// The column values of one event, in the order of the `INSERT`.
/// Fills the alerts table (new in migration 3) from the alert and detection records stored
/// before it, in one transaction; records that no longer decode are logged and skipped.
fn backfill_alerts(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let mut n = 0usize;
    {
        let mut read =
            tx.prepare("SELECT json FROM events WHERE event_type IN ('alert', 'detection') ORDER BY ts_us")?;
        let mut write = tx.prepare(&format!(
            "INSERT OR IGNORE INTO alerts ({ALERT_COLUMNS}) VALUES ({})",
            vec!["?"; ALERT_COLUMN_COUNT].join(", ")
        ))?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let json: String = row.get(0)?;
            match crate::decode_event(&json) {
                Ok(e) => {
                    if let Some(a) = alerts::AlertRecord::project(&e) {
                        write.execute(params_from_iter(alert_values(&a.columns()).iter()))?;
                        n += 1;
                    }
                }
                Err(e) => tracing::warn!(store = NAME, error = %e, "alerts backfill: stored record skipped"),
            }
        }
    }
    tracing::info!(store = NAME, records = n, "alerts table filled from stored records");
    Ok(())
}

/// The alerts table's columns, in the order of [`alert_values`] and [`alert_columns`].
const ALERT_COLUMNS: &str = "id, ts_us, day, kind, severity, rule_id, rule_title, category, segment, sensor, src_ip, \
    dest_ip, host, user, entities, tags, count, status, owner, verdict, incident_id, version, json";
const ALERT_COLUMN_COUNT: usize = 23;

fn alert_values(c: &AlertColumns) -> Vec<Value> {
    let t = |s: &str| Value::Text(s.to_string());
    vec![
        t(&c.id),
        Value::Integer(c.ts_us),
        Value::Integer(c.ts_us.div_euclid(86_400_000_000)),
        t(&c.kind),
        Value::Integer(i64::from(c.severity)),
        t(&c.rule_id),
        t(&c.rule_title),
        t(&c.category),
        t(&c.segment),
        t(&c.sensor),
        t(&c.src_ip),
        t(&c.dest_ip),
        t(&c.host),
        t(&c.user),
        Value::Text(incidents::sqlite_list(&c.entities)),
        Value::Text(incidents::sqlite_list(&c.tags)),
        Value::Integer(i64::try_from(c.count).unwrap_or(i64::MAX)),
        t(&c.status),
        t(&c.owner),
        t(&c.verdict),
        t(&c.incident_id),
        Value::Integer(i64::try_from(c.version).unwrap_or(i64::MAX)),
        t(&c.json),
    ]
}

/// Decodes a list column (`\x1fa\x1fb\x1f`).
fn sqlite_unlist(s: &str) -> Vec<String> {
    s.split(incidents::SEP).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

fn alert_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertColumns> {
    let ts_us: i64 = r.get(1)?;
    Ok(AlertColumns {
        id: r.get(0)?,
        ts: filter::clamp_secs(ts_us.div_euclid(1_000_000)),
        ts_us,
        kind: r.get(3)?,
        severity: u8::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        rule_id: r.get(5)?,
        rule_title: r.get(6)?,
        category: r.get(7)?,
        segment: r.get(8)?,
        sensor: r.get(9)?,
        src_ip: r.get(10)?,
        dest_ip: r.get(11)?,
        host: r.get(12)?,
        user: r.get(13)?,
        entities: sqlite_unlist(&r.get::<_, String>(14)?),
        tags: sqlite_unlist(&r.get::<_, String>(15)?),
        count: u64::try_from(r.get::<_, i64>(16)?).unwrap_or(0),
        status: r.get(17)?,
        owner: r.get(18)?,
        verdict: r.get(19)?,
        incident_id: r.get(20)?,
        version: u64::try_from(r.get::<_, i64>(21)?).unwrap_or(0),
        json: r.get(22)?,
    })
}

fn row_values(e: &Event) -> Vec<Value> {
    let text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
    let int = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    let json = String::from_utf8(e.to_json()).unwrap_or_default();
    vec![
        Value::Text(e.id.clone().unwrap_or_default()),
        Value::Integer(e.timestamp.unix_micros()),
        Value::Integer(e.timestamp.unix_day()),
        Value::Text(e.event_type.as_str().to_string()),
        text(&e.sensor),
        text(&e.segment),
        text(&e.host),
        text(&e.src_ip),
        int(e.src_port.map(i64::from)),
        text(&e.dest_ip),
        int(e.dest_port.map(i64::from)),
        text(&e.proto),
        // Bit-cast: u64 ids above i64::MAX become negative, and filters cast the same way.
        int(e.flow_id.map(|f| f as i64)),
        text(&e.community_id),
        Value::Text(json),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::EventType;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_in_memory() {
        let store = SqliteStore::open_in_memory().expect("open in memory");
        crate::conformance::run_all(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance_on_a_file_in_wal_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(&path).expect("open file");
        crate::conformance::run_all(&store).await;
        let mode: String = store
            .with_conn("test", |c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(|e| StoreError::Query(e.to_string()))
            })
            .await
            .expect("journal mode");
        assert_eq!(mode.to_lowercase(), "wal");
    }

    #[tokio::test]
    async fn migrations_apply_once_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("m.db");
        let all: Vec<u32> = migrations::SQLITE.iter().map(|m| m.version).collect();
        let store = SqliteStore::open(&path).expect("open");
        assert_eq!(store.migrate().await.expect("first migrate"), all);
        assert_eq!(store.migrate().await.expect("second migrate"), Vec::<u32>::new());
        drop(store);
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.migrate().await.expect("migrate after reopen"), Vec::<u32>::new());
        let recorded = store
            .with_conn("test", |c| applied_versions(c).map_err(|e| StoreError::Query(e.to_string())))
            .await
            .expect("versions");
        assert_eq!(recorded, all);
    }

    #[tokio::test]
    async fn migration_3_fills_the_alerts_table_from_stored_records() {
        let store = SqliteStore::open_in_memory().expect("open");
        store.migrate().await.expect("migrate");
        let mut a = Event::new(EventType::Alert, Timestamp::from_unix_micros(1_700_000_000_000_000));
        a.alert =
            Some(soc_model::Alert { signature_id: Some(7), signature: Some("ET X".into()), ..Default::default() });
        a.ensure_id();
        let mut f = Event::new(EventType::Flow, Timestamp::from_unix_micros(1_700_000_000_000_001));
        f.ensure_id();
        store.insert_events(&[a.clone(), f]).await.expect("insert");
        // As a database from before migration 3: events only.
        store
            .with_conn("test", |c| {
                c.execute_batch("DROP TABLE alerts; DELETE FROM schema_migrations WHERE version = 3")
                    .map_err(|e| StoreError::Query(e.to_string()))
            })
            .await
            .expect("downgrade");
        assert_eq!(store.migrate().await.expect("migrate again"), vec![3]);
        let page = store.query_alerts(&AlertQuery::default()).await.expect("alerts");
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].id, a.id.clone().unwrap_or_default());
        assert_eq!(page.items[0].rule_title, "ET X");
    }

    #[tokio::test]
    async fn events_without_id_are_rejected_and_nothing_is_written() {
        let store = SqliteStore::open_in_memory().expect("open");
        store.migrate().await.expect("migrate");
        let mut good = Event::new(EventType::Dns, Timestamp::from_unix_micros(1_700_000_000_000_000));
        good.ensure_id();
        let bad = Event::new(EventType::Dns, Timestamp::from_unix_micros(1_700_000_000_000_001));
        let err = store.insert_events(&[good.clone(), bad]).await.expect_err("must fail");
        assert!(matches!(err, StoreError::MissingId), "{err:?}");
        assert!(!err.is_transient());
        assert_eq!(store.count_events(&EventQuery::default()).await.expect("count"), 0);
        store.insert_events(&[good]).await.expect("insert with id");
        assert_eq!(store.count_events(&EventQuery::default()).await.expect("count"), 1);
    }

    #[tokio::test]
    async fn unopenable_path_and_missing_schema_are_clear_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("no/such/dir/x.db");
        match SqliteStore::open(&path) {
            Err(StoreError::Open { addr, .. }) => assert!(addr.contains("x.db"), "{addr}"),
            other => panic!("want Open error, got {other:?}"),
        }
        let store = SqliteStore::open_in_memory().expect("open");
        let err = store.count_events(&EventQuery::default()).await.expect_err("no table before migrate");
        assert!(matches!(err, StoreError::Query(_)), "{err:?}");
    }

    #[tokio::test]
    async fn corrupt_stored_json_is_an_error_not_a_panic() {
        let store = SqliteStore::open_in_memory().expect("open");
        store.migrate().await.expect("migrate");
        store
            .with_conn("test", |c| {
                c.execute(
                    "INSERT INTO events (id, ts_us, day, event_type, json) VALUES ('x', 0, 0, 'flow', '{nope')",
                    [],
                )
                .map_err(|e| StoreError::Query(e.to_string()))
            })
            .await
            .expect("raw insert");
        let err = store.query_events(&EventQuery::default()).await.expect_err("must fail");
        assert!(err.to_string().contains("cannot be decoded"), "{err}");
    }
}
