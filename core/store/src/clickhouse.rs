//! The production store: ClickHouse over HTTP with the `clickhouse` crate.
//!
//! Written against ClickHouse 18.16 (the server CI runs, Debian's package) and valid on
//! current servers:
//! - the client runs with `with_validation(false)` (18.16 has no
//!   `RowBinaryWithNamesAndTypes`), inserts are plain `RowBinary`;
//! - values are bound client-side with `.bind()` (escaped); 18.16 has no server-side
//!   `{name:Type}` parameters;
//! - `events` is a `ReplacingMergeTree` partitioned by UTC day and read with `FINAL`, so a
//!   re-inserted event counts once even before the background merge removes the copy;
//! - retention drops whole daily partitions (`ALTER TABLE ... DROP PARTITION`), not rows.
//!
//! The server version is read at connect time and logged ([`ClickHouseStore::server_version`]).
//! The schema is in [`crate::migrations::CLICKHOUSE`].

use crate::filter::{self, Dialect, Param};
use crate::incidents::{self, IncidentColumns, IncidentQuery};
use crate::migrations;
use crate::telemetry;
use crate::{CountBy, EventQuery, RetentionReport, Store, StoreError};
use ::clickhouse::error::Error as ChError;
use ::clickhouse::sql::Identifier;
use ::clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use soc_model::{Event, Incident};
use std::future::Future;
use std::time::{Duration, Instant};

const NAME: &str = "clickhouse";

/// How long connecting (the version probe) and `ping` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on any other operation; see [`ClickHouseStore::with_timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The server's version as reported by `SELECT version()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    /// The full text, e.g. `18.16.1` or `24.8.4.13`.
    pub text: String,
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `major.minor[.anything]`; unknown parts are 0.
    pub fn parse(text: &str) -> Self {
        let mut it = text.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let major = it.next().unwrap_or(0);
        let minor = it.next().unwrap_or(0);
        Self { text: text.trim().to_string(), major, minor }
    }

    /// True for servers older than 20.1, which lack TTL, codecs, skip indexes and native
    /// IP types; the schema here uses none of them, so both paths share it today.
    pub fn is_legacy(&self) -> bool {
        self.major < 20
    }
}

/// The ClickHouse [`Store`]. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct ClickHouseStore {
    client: Client,
    /// The URL without credentials, for error messages.
    addr: String,
    database: String,
    version: ServerVersion,
    timeout: Duration,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("addr", &self.addr)
            .field("database", &self.database)
            .field("version", &self.version.text)
            .finish_non_exhaustive()
    }
}

/// One `events` row as sent in RowBinary; field order = column order of the `INSERT`.
#[derive(Row, Serialize, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct EventRow {
    id: String,
    /// `DateTime('UTC')`: seconds since the epoch, clamped to its unsigned 32-bit range.
    ts: u32,
    ts_us: i64,
    event_type: String,
    sensor: Option<String>,
    segment: Option<String>,
    host: Option<String>,
    src_ip: Option<String>,
    src_port: Option<u16>,
    dest_ip: Option<String>,
    dest_port: Option<u16>,
    proto: Option<String>,
    flow_id: Option<u64>,
    community_id: Option<String>,
    json: String,
}

impl EventRow {
    fn from_event(e: &Event) -> Self {
        EventRow {
            id: e.id.clone().unwrap_or_default(),
            ts: filter::clamp_secs(e.timestamp.unix_secs()),
            ts_us: e.timestamp.unix_micros(),
            event_type: e.event_type.as_str().to_string(),
            sensor: e.sensor.clone(),
            segment: e.segment.clone(),
            host: e.host.clone(),
            src_ip: e.src_ip.clone(),
            src_port: e.src_port,
            dest_ip: e.dest_ip.clone(),
            dest_port: e.dest_port,
            proto: e.proto.clone(),
            flow_id: e.flow_id,
            community_id: e.community_id.clone(),
            json: String::from_utf8(e.to_json()).unwrap_or_default(),
        }
    }
}

/// One `incidents` row; field order = column order.
#[derive(Row, Serialize)]
#[clickhouse(crate = "::clickhouse")]
struct IncidentRow {
    incident_id: String,
    version: u64,
    updated_us: i64,
    first_seen_us: i64,
    last_seen_us: i64,
    severity: u8,
    status: String,
    owner: String,
    segments: Vec<String>,
    entities: Vec<String>,
    json: String,
}

impl IncidentRow {
    fn of(i: &Incident) -> Self {
        let c = IncidentColumns::of(i);
        IncidentRow {
            incident_id: c.incident_id,
            version: c.version,
            updated_us: c.updated_us,
            first_seen_us: c.first_seen_us,
            last_seen_us: c.last_seen_us,
            severity: c.severity,
            status: c.status.to_string(),
            owner: c.owner,
            segments: c.segments,
            entities: c.entities,
            json: c.json,
        }
    }
}

/// One `forwarding` row; field order = column order.
#[derive(Row, Serialize)]
#[clickhouse(crate = "::clickhouse")]
struct ForwardingRow {
    id: String,
    ts: u32,
    ts_us: i64,
    incident_id: String,
    incident_version: u64,
    state: String,
    json: String,
}

#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct JsonRow {
    json: String,
}

#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct KeyCount {
    k: String,
    c: u64,
}

/// `url` without `user:password@`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Database names are restricted to `[A-Za-z_][A-Za-z0-9_]*`: they end up in DDL.
fn valid_database(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128
}

/// `YYYYMMDD` (a `toYYYYMMDD` partition id) to days since the epoch.
fn yyyymmdd_to_day(id: &str) -> Option<i64> {
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = id[..4].parse().ok()?;
    let m: i64 = id[4..6].parse().ok()?;
    let d: i64 = id[6..].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn bind(mut q: ::clickhouse::query::Query, params: Vec<Param>) -> ::clickhouse::query::Query {
    for p in params {
        q = match p {
            Param::Str(s) => q.bind(s),
            Param::I64(v) => q.bind(v),
            Param::U64(v) => q.bind(v),
            Param::U32(v) => q.bind(v),
        };
    }
    q
}

impl ClickHouseStore {
    /// Connects to the server at `url` (HTTP interface, e.g. `http://127.0.0.1:8123`),
    /// reads and logs its version, and creates `database` if missing. Call
    /// [`Store::migrate`] next. An empty `user` means the server's default user.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] naming the address when the server does not answer;
    /// [`StoreError::Invalid`] for a bad database name or URL.
    pub async fn connect(url: &str, database: &str, user: &str, password: &str) -> Result<Self, StoreError> {
        if !valid_database(database) {
            return Err(StoreError::Invalid(format!(
                "database name {database:?}: use letters, digits and '_' (not starting with a digit)"
            )));
        }
        let addr = redact(url);
        let mut client = Client::default().with_url(url).with_validation(false);
        if !user.is_empty() {
            client = client.with_user(user);
        }
        if !password.is_empty() {
            client = client.with_password(password);
        }
        let mut store = ClickHouseStore {
            client,
            addr,
            database: database.to_string(),
            version: ServerVersion::parse(""),
            timeout: DEFAULT_TIMEOUT,
        };
        let text: String =
            store.bounded(CONNECT_TIMEOUT, store.client.query("SELECT version()").fetch_one::<String>()).await?;
        store.version = ServerVersion::parse(&text);
        tracing::info!(
            store = NAME,
            addr = %store.addr,
            version = %store.version.text,
            legacy = store.version.is_legacy(),
            "connected to ClickHouse"
        );
        store
            .bounded(
                store.timeout,
                store.client.query("CREATE DATABASE IF NOT EXISTS ?").bind(Identifier(database)).execute(),
            )
            .await?;
        store.client = store.client.clone().with_database(database);
        Ok(store)
    }

    /// Bounds every later operation (default 300 s); one that takes longer fails with
    /// [`StoreError::Unavailable`] (inserts are idempotent, so retrying is safe).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The version the server reported at connect time.
    pub fn server_version(&self) -> &ServerVersion {
        &self.version
    }

    /// The database this store works in.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Drops this store's database and everything in it. For tests and decommissioning.
    pub async fn drop_database(&self) -> Result<(), StoreError> {
        let r = self
            .bounded(
                self.timeout,
                self.client.query("DROP DATABASE IF EXISTS ?").bind(Identifier(&self.database)).execute(),
            )
            .await;
        telemetry::track(NAME, "drop_database", r)
    }

    fn map_err(&self, e: ChError) -> StoreError {
        let unavailable = |reason: String| StoreError::Unavailable { addr: self.addr.clone(), reason };
        match e {
            ChError::Network(_) | ChError::TimedOut => unavailable(e.to_string()),
            ChError::Other(ref inner) if inner.downcast_ref::<std::io::Error>().is_some() => unavailable(e.to_string()),
            ChError::InvalidParams(_) | ChError::Unsupported(_) => StoreError::Invalid(e.to_string()),
            other => StoreError::Query(other.to_string().trim().to_string()),
        }
    }

    /// Awaits `fut` for at most `limit`, mapping client errors.
    async fn bounded<T>(
        &self,
        limit: Duration,
        fut: impl Future<Output = Result<T, ChError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r.map_err(|e| self.map_err(e)),
            Err(_) => Err(StoreError::Unavailable {
                addr: self.addr.clone(),
                reason: format!("no answer within {} s", limit.as_secs()),
            }),
        }
    }

    async fn applied_versions(&self) -> Result<Vec<u32>, StoreError> {
        self.bounded(
            self.timeout,
            self.client.query("SELECT DISTINCT version FROM schema_migrations ORDER BY version").fetch_all::<u32>(),
        )
        .await
    }

    async fn migrate_inner(&self) -> Result<Vec<u32>, StoreError> {
        self.bounded(self.timeout, self.client.query_raw(migrations::clickhouse::BOOKKEEPING).execute()).await?;
        let applied = self.applied_versions().await?;
        let mut done = Vec::new();
        for m in migrations::pending(migrations::CLICKHOUSE, &applied) {
            tracing::info!(store = NAME, database = %self.database, version = m.version, name = m.name, "applying migration");
            for stmt in m.statements {
                self.bounded(self.timeout, self.client.query_raw(stmt).execute()).await.map_err(|e| match e {
                    e @ StoreError::Unavailable { .. } => e,
                    other => StoreError::Migration { version: m.version, reason: other.to_string() },
                })?;
            }
            self.bounded(
                self.timeout,
                self.client
                    .query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, now())")
                    .bind(m.version)
                    .execute(),
            )
            .await?;
            done.push(m.version);
        }
        if done.is_empty() {
            tracing::debug!(store = NAME, database = %self.database, "schema up to date");
        } else {
            tracing::info!(store = NAME, database = %self.database, applied = ?done, "migrations applied");
        }
        Ok(done)
    }

    async fn insert_inner(&self, events: &[Event]) -> Result<(), StoreError> {
        crate::require_ids(events)?;
        if events.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let write = async {
            let mut insert = self.client.insert::<EventRow>("events").await?;
            for e in events {
                insert.write(&EventRow::from_event(e)).await?;
            }
            insert.end().await
        };
        self.bounded(self.timeout, write).await?;
        telemetry::inserted(NAME, events.len(), started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn search_inner(&self, q: &crate::search::SearchQuery) -> Result<crate::search::SearchResult, StoreError> {
        let c = crate::search::compile(q, Dialect::ClickHouse)?;
        let query = bind(self.client.query(&c.sql), c.params);
        if c.counts {
            let rows = self.bounded(self.timeout, query.fetch_all::<KeyCount>()).await?;
            Ok(crate::search::SearchResult::Counts(rows.into_iter().map(|r| (r.k, r.c)).collect()))
        } else {
            let rows = self.bounded(self.timeout, query.fetch_all::<JsonRow>()).await?;
            let events = rows.iter().map(|r| crate::decode_event(&r.json)).collect::<Result<Vec<_>, _>>()?;
            Ok(crate::search::SearchResult::Events(events))
        }
    }

    async fn query_inner(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let w = filter::build(q, Dialect::ClickHouse);
        let sql = format!(
            "SELECT json FROM events FINAL WHERE {} ORDER BY {} LIMIT {}",
            w.sql,
            filter::order_by(q),
            q.effective_limit()
        );
        let rows = self.bounded(self.timeout, bind(self.client.query(&sql), w.params).fetch_all::<JsonRow>()).await?;
        rows.iter().map(|r| crate::decode_event(&r.json)).collect()
    }

    async fn count_inner(&self, q: &EventQuery) -> Result<u64, StoreError> {
        let w = filter::build(q, Dialect::ClickHouse);
        let sql = format!("SELECT count() FROM events FINAL WHERE {}", w.sql);
        self.bounded(self.timeout, bind(self.client.query(&sql), w.params).fetch_one::<u64>()).await
    }

    async fn count_by_inner(&self, by: CountBy, q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError> {
        let w = filter::build(q, Dialect::ClickHouse);
        let key = filter::group_key(by, Dialect::ClickHouse);
        let sql = format!(
            "SELECT {key} AS k, count() AS c FROM events FINAL WHERE {} GROUP BY k ORDER BY c DESC, k ASC",
            w.sql
        );
        let rows = self.bounded(self.timeout, bind(self.client.query(&sql), w.params).fetch_all::<KeyCount>()).await?;
        Ok(rows.into_iter().map(|r| (r.k, r.c)).collect())
    }

    async fn retention_inner(&self, keep_from_day: i64) -> Result<RetentionReport, StoreError> {
        let ids: Vec<String> = self
            .bounded(
                self.timeout,
                self.client
                    .query(
                        "SELECT DISTINCT partition_id FROM system.parts \
                         WHERE database = ? AND table = 'events' AND active ORDER BY partition_id",
                    )
                    .bind(self.database.as_str())
                    .fetch_all::<String>(),
            )
            .await?;
        let mut old: Vec<(i64, String)> = Vec::new();
        for id in ids {
            match yyyymmdd_to_day(&id) {
                Some(day) if day < keep_from_day => old.push((day, id)),
                Some(_) => {}
                None => {
                    tracing::warn!(store = NAME, partition = %id, "retention: unexpected partition id, left alone")
                }
            }
        }
        let mut report = RetentionReport::default();
        if old.is_empty() {
            tracing::debug!(store = NAME, keep_from_day, "retention: nothing to drop");
            return Ok(report);
        }
        // Rows as queries see them (FINAL: a re-inserted event once), counted before the
        // drop; rows inserted into these days meanwhile are dropped but not counted.
        let cutoff = filter::clamp_secs(keep_from_day.saturating_mul(86_400));
        report.rows_dropped = self
            .bounded(
                self.timeout,
                self.client
                    .query("SELECT count() FROM events FINAL WHERE ts < toDateTime(?)")
                    .bind(cutoff)
                    .fetch_one::<u64>(),
            )
            .await?;
        for (day, id) in old {
            // The id is 8 validated digits: it is the partition expression's value.
            let value: u32 = id.parse().map_err(|_| StoreError::Query(format!("bad partition id {id}")))?;
            self.bounded(self.timeout, self.client.query("ALTER TABLE events DROP PARTITION ?").bind(value).execute())
                .await?;
            tracing::info!(store = NAME, database = %self.database, partition = %id, day, "retention dropped partition");
            report.days_dropped.push(day);
        }
        tracing::info!(store = NAME, keep_from_day, days = ?report.days_dropped, rows = report.rows_dropped, "retention dropped days");
        Ok(report)
    }

    async fn upsert_incidents_inner(&self, list: &[Incident]) -> Result<(), StoreError> {
        incidents::check_incidents(list)?;
        if list.is_empty() {
            return Ok(());
        }
        let write = async {
            let mut insert = self.client.insert::<IncidentRow>("incidents").await?;
            for i in list {
                insert.write(&IncidentRow::of(i)).await?;
            }
            insert.end().await
        };
        self.bounded(self.timeout, write).await
    }

    async fn get_incident_inner(&self, incident_id: &str) -> Result<Option<Incident>, StoreError> {
        let rows = self
            .bounded(
                self.timeout,
                self.client
                    .query("SELECT json FROM incidents FINAL WHERE incident_id = ? LIMIT 1")
                    .bind(incident_id)
                    .fetch_all::<JsonRow>(),
            )
            .await?;
        rows.first().map(|r| incidents::decode_incident(&r.json)).transpose()
    }

    async fn query_incidents_inner(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let w = incidents::build(q, Dialect::ClickHouse);
        let sql = format!(
            "SELECT json FROM incidents FINAL WHERE {} ORDER BY {} LIMIT {}, {}",
            w.sql,
            incidents::ORDER,
            q.offset,
            q.effective_limit()
        );
        let rows = self.bounded(self.timeout, bind(self.client.query(&sql), w.params).fetch_all::<JsonRow>()).await?;
        rows.iter().map(|r| incidents::decode_incident(&r.json)).collect()
    }

    async fn count_incidents_inner(&self, q: &IncidentQuery) -> Result<u64, StoreError> {
        let w = incidents::build(q, Dialect::ClickHouse);
        let sql = format!("SELECT count() FROM incidents FINAL WHERE {}", w.sql);
        self.bounded(self.timeout, bind(self.client.query(&sql), w.params).fetch_one::<u64>()).await
    }

    async fn insert_forwarding_inner(&self, records: &[Event]) -> Result<(), StoreError> {
        incidents::check_forwarding(records)?;
        if records.is_empty() {
            return Ok(());
        }
        let write = async {
            let mut insert = self.client.insert::<ForwardingRow>("forwarding").await?;
            for e in records {
                let Some(f) = e.forwarding.as_ref() else { continue };
                insert
                    .write(&ForwardingRow {
                        id: e.id.clone().unwrap_or_default(),
                        ts: filter::clamp_secs(e.timestamp.unix_secs()),
                        ts_us: e.timestamp.unix_micros(),
                        incident_id: f.incident_id.clone(),
                        incident_version: f.incident_version,
                        state: f.state.as_str().to_string(),
                        json: String::from_utf8(e.to_json()).unwrap_or_default(),
                    })
                    .await?;
            }
            insert.end().await
        };
        self.bounded(self.timeout, write).await
    }

    async fn query_forwarding_inner(&self, incident_id: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError> {
        let limit = if limit == 0 { crate::MAX_LIMIT } else { limit.min(crate::MAX_LIMIT) };
        let q = match incident_id {
            Some(id) => self
                .client
                .query(&format!(
                    "SELECT json FROM forwarding FINAL WHERE incident_id = ? ORDER BY ts_us DESC, id DESC LIMIT {limit}"
                ))
                .bind(id),
            None => self
                .client
                .query(&format!("SELECT json FROM forwarding FINAL ORDER BY ts_us DESC, id DESC LIMIT {limit}")),
        };
        let rows = self.bounded(self.timeout, q.fetch_all::<JsonRow>()).await?;
        rows.iter().map(|r| crate::decode_event(&r.json)).collect()
    }
}

#[async_trait::async_trait]
impl Store for ClickHouseStore {
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        telemetry::track(NAME, "migrate", self.migrate_inner().await)
    }

    async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError> {
        telemetry::track(NAME, "insert", self.insert_inner(events).await)
    }

    async fn query_events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        telemetry::track(NAME, "query", self.query_inner(q).await)
    }

    async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError> {
        telemetry::track(NAME, "count", self.count_inner(q).await)
    }

    async fn count_by(&self, by: CountBy, q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError> {
        telemetry::track(NAME, "count_by", self.count_by_inner(by, q).await)
    }

    async fn drop_days_before(&self, keep_from_day: i64) -> Result<RetentionReport, StoreError> {
        telemetry::track(NAME, "retention", self.retention_inner(keep_from_day).await)
    }

    async fn upsert_incidents(&self, list: &[Incident]) -> Result<(), StoreError> {
        telemetry::track(NAME, "upsert_incidents", self.upsert_incidents_inner(list).await)
    }

    async fn get_incident(&self, incident_id: &str) -> Result<Option<Incident>, StoreError> {
        telemetry::track(NAME, "get_incident", self.get_incident_inner(incident_id).await)
    }

    async fn query_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        telemetry::track(NAME, "query_incidents", self.query_incidents_inner(q).await)
    }

    async fn count_incidents(&self, q: &IncidentQuery) -> Result<u64, StoreError> {
        telemetry::track(NAME, "count_incidents", self.count_incidents_inner(q).await)
    }

    async fn insert_forwarding(&self, records: &[Event]) -> Result<(), StoreError> {
        telemetry::track(NAME, "insert_forwarding", self.insert_forwarding_inner(records).await)
    }

    async fn query_forwarding(&self, incident_id: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError> {
        telemetry::track(NAME, "query_forwarding", self.query_forwarding_inner(incident_id, limit).await)
    }

    async fn search(&self, q: &crate::search::SearchQuery) -> Result<crate::search::SearchResult, StoreError> {
        telemetry::track(NAME, "search", self.search_inner(q).await)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let r = self.bounded(CONNECT_TIMEOUT, self.client.query("SELECT 1").fetch_one::<u8>()).await.map(|_| ());
        telemetry::track(NAME, "ping", r)
    }

    fn name(&self) -> &'static str {
        NAME
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_map_to_epoch_days() {
        assert_eq!(yyyymmdd_to_day("19700101"), Some(0));
        assert_eq!(yyyymmdd_to_day("20200501"), Some(18383));
        assert_eq!(yyyymmdd_to_day("20240229"), Some(19782));
        assert_eq!(yyyymmdd_to_day("2020050"), None);
        assert_eq!(yyyymmdd_to_day("2020130a"), None);
        assert_eq!(yyyymmdd_to_day("20201301"), None);
    }

    #[test]
    fn versions_parse_and_urls_are_redacted() {
        let v = ServerVersion::parse("18.16.1\n");
        assert_eq!((v.major, v.minor, v.text.as_str(), v.is_legacy()), (18, 16, "18.16.1", true));
        assert!(!ServerVersion::parse("24.8.4.13").is_legacy());
        assert_eq!(redact("http://u:p@127.0.0.1:8123"), "http://127.0.0.1:8123");
        assert_eq!(redact("http://127.0.0.1:8123"), "http://127.0.0.1:8123");
    }

    #[test]
    fn database_names_are_checked() {
        assert!(valid_database("soc"));
        assert!(valid_database("conf_123_456_0"));
        assert!(!valid_database("1abc"));
        assert!(!valid_database("a-b"));
        assert!(!valid_database("a`; DROP"));
        assert!(!valid_database(""));
    }
}
