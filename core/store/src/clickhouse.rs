//! The production store: ClickHouse over HTTP with the `clickhouse` crate.
//!
//! Written against ClickHouse 18.16 (the server CI runs, Debian's package) and valid on
//! current servers:
//! - the client runs with `with_validation(false)` (18.16 has no
//!   `RowBinaryWithNamesAndTypes`), inserts are plain `RowBinary`;
//! - values are bound client-side with `.bind()` (escaped); 18.16 has no server-side
//!   `{name:Type}` parameters;
//! - `events` is a `ReplacingMergeTree` partitioned by UTC day; counts read it with `FINAL`,
//!   so a re-inserted event counts once even before the background merge removes the copy;
//! - record reads are two-phase (18.16 cannot read in key order): the sort keys of the page
//!   over narrow columns without `FINAL` (copies not merged yet dropped by id; for time order,
//!   the time of the last row first, reading `ts_us` alone, so the key read is a `ts` range),
//!   then the JSON of those ids only; the per-row conditions (addresses, sensor, a search
//!   expression) go to `PREWHERE`, and a page in time order reads the newest (or oldest) 1, 6,
//!   24, 72 hours first, the whole range only when the page is still not full;
//! - alerts are rows of their own ([`crate::alerts`], `ReplacingMergeTree(version)`) read
//!   without `FINAL`, their triage state in `alert_state`; a list's first page reads the
//!   newest hour first and widens the window only when the page is not full, its total
//!   comes from the hourly counts, status filters from `alert_state`;
//! - the statistics ([`crate::summary`]) read hourly `SummingMergeTree` tables filled by
//!   materialized views (top talkers: whole days from a daily table keyed by segment first),
//!   raw rows only for partial hours, and run their four queries at once;
//! - retention drops whole daily partitions (`ALTER TABLE ... DROP PARTITION`), not rows.
//!
//! The server version is read at connect time and logged ([`ClickHouseStore::server_version`]).
//! The schema is in [`crate::migrations::CLICKHOUSE`].

use crate::alerts::{self, AlertColumns, AlertPage, AlertQuery, AlertRecord, AlertState};
use crate::filter::{self, Dialect, Param};
use crate::incidents::{self, IncidentColumns, IncidentQuery};
use crate::migrations;
use crate::summary::{self, Summary, SummaryQuery};
use crate::telemetry;
use crate::{CountBy, EventQuery, RetentionReport, Store, StoreError};
use ::clickhouse::error::Error as ChError;
use ::clickhouse::sql::Identifier;
use ::clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};
use soc_model::{Event, Incident};
use std::collections::{HashMap, HashSet};
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

const ALERT_COLUMNS: &str = "id, ts, ts_us, kind, severity, rule_id, rule_title, category, segment, sensor, src_ip, \
    dest_ip, host, user, entities, tags, count, status, owner, verdict, incident_id, version, json";

/// One `event_geo` row; field order = column order.
#[derive(Row, Serialize)]
#[clickhouse(crate = "::clickhouse")]
struct GeoRow {
    id: String,
    ts: u32,
    ts_us: i64,
    segment: String,
    src_country: String,
    dest_country: String,
    src_asn: String,
    dest_asn: String,
}

/// The stored version and count of an alert id.
#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct AlertVersionRow {
    id: String,
    version: u64,
    count: u64,
}

/// The latest triage state of an alert id.
#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct StateVersionRow {
    id: String,
    status: String,
    owner: String,
    verdict: String,
    incident_id: String,
    version: u64,
}

/// Triaged alerts matching a status filter, and those counted as untriaged `new` ones.
#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct StateCounts {
    matching: u64,
    as_new: u64,
}

/// One `alert_state` row (a triage change); field order = column order.
#[derive(Row, Serialize)]
#[clickhouse(crate = "::clickhouse")]
struct StateRow {
    id: String,
    ts: u32,
    ts_us: i64,
    kind: String,
    severity: u8,
    rule_id: String,
    rule_title: String,
    segment: String,
    sensor: String,
    src_ip: String,
    dest_ip: String,
    status: String,
    owner: String,
    verdict: String,
    incident_id: String,
    version: u64,
}

impl StateRow {
    fn of(r: &AlertRecord) -> Self {
        let c = r.columns();
        StateRow {
            id: c.id,
            ts: c.ts,
            ts_us: c.ts_us,
            kind: c.kind,
            severity: c.severity,
            rule_id: c.rule_id,
            rule_title: c.rule_title,
            segment: c.segment,
            sensor: c.sensor,
            src_ip: c.src_ip,
            dest_ip: c.dest_ip,
            status: c.status,
            owner: c.owner,
            verdict: c.verdict,
            incident_id: c.incident_id,
            version: c.version,
        }
    }
}

/// Gives a record read from `alerts` its triage state (`None`: never triaged, `new`); the
/// record's version is the higher of the row's and the state's.
fn with_state(r: &mut AlertRecord, state: Option<(AlertState, u64)>) {
    match state {
        Some((st, v)) => {
            r.state = st;
            r.version = r.version.max(v);
        }
        None => r.state = AlertState::default(),
    }
}

/// Days since the epoch as `YYYY-MM-DD` (proleptic Gregorian, UTC).
fn iso_date(days: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `{col} IN (...)` for a data scope (`None`: everything, empty: nothing).
fn seg_scope(col: &str, segments: Option<&[String]>, params: &mut Vec<Param>) -> String {
    match segments {
        None => "1 = 1".into(),
        Some([]) => "1 = 0".into(),
        Some(v) => {
            params.extend(v.iter().cloned().map(Param::Str));
            format!("{col} IN ({})", marks(v.len()))
        }
    }
}

/// The time windows an alert list in time order tries, narrowest first (`None`: the whole
/// range, always last): the newest 1 h, 6 h and 48 h before `until` (or from `now` on, so
/// that rows stamped in the future are included) for newest first; the oldest ones after
/// `since` for oldest first. Other orders read the whole range at once.
fn alert_windows(q: &AlertQuery, now: soc_model::Timestamp) -> Vec<Option<filter::Where>> {
    if q.sort == alerts::AlertSort::Time {
        time_windows(&[1, 6, 48], q.descending, q.since, q.until, now)
    } else {
        vec![None]
    }
}

/// The time windows a read in time order tries, narrowest first (`None`: the whole range,
/// always last): the newest `hours` (e.g. 1 h, 6 h, 48 h) before `until` (or from `now` on, so that rows
/// stamped in the future are included) when `newest_first`; the oldest ones after `since`
/// otherwise (none without `since`). A window holds every matching row on its side of its
/// bound, so a page filled inside it is the page of the whole range.
fn time_windows(
    hours: &[i64],
    newest_first: bool,
    since: Option<soc_model::Timestamp>,
    until: Option<soc_model::Timestamp>,
    now: soc_model::Timestamp,
) -> Vec<Option<filter::Where>> {
    const HOUR: i64 = 3_600_000_000;
    let mut out = Vec::new();
    for w in hours.iter().map(|h| h * HOUR) {
        if newest_first {
            let lo = until.unwrap_or(now).unix_micros().saturating_sub(w);
            if since.is_some_and(|s| s.unix_micros() >= lo) {
                break;
            }
            out.push(Some(filter::Where {
                sql: "ts >= toDateTime(?) AND ts_us >= ?".into(),
                params: vec![Param::U32(filter::clamp_secs(lo.div_euclid(1_000_000))), Param::I64(lo)],
            }));
        } else {
            let Some(since) = since else { break };
            let hi = since.unix_micros().saturating_add(w);
            if until.is_some_and(|u| u.unix_micros() <= hi) {
                break;
            }
            out.push(Some(filter::Where {
                sql: "ts <= toDateTime(?) AND ts_us < ?".into(),
                params: vec![Param::U32(filter::clamp_secs(hi.div_euclid(1_000_000))), Param::I64(hi)],
            }));
        }
    }
    out.push(None);
    out
}

/// Phase one of a two-phase read: the sort key of a matching row.
#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct KeyRow {
    id: String,
    ts_us: i64,
    /// `event_type` for events, the severity rank (as text) for alerts.
    aux: String,
}

#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct IdJsonRow {
    id: String,
    json: String,
}

#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct FieldKeyCount {
    f: String,
    k: String,
    c: u64,
}

#[derive(Row, Deserialize)]
#[clickhouse(crate = "::clickhouse")]
struct TypeSegBucket {
    t: String,
    s: String,
    b: i64,
    c: u64,
}

/// The windows (hours) an event read in time order tries before the whole range.
const EVENT_WINDOW_HOURS: [i64; 4] = [1, 6, 24, 72];

/// The windows of [`EVENT_WINDOW_HOURS`] an event read over `[since, until)` tries: those
/// under a quarter of the range (all when it is open). Wider steps than the alert list's
/// (a filtered search's matches are sparser); over a short range a full page inside a window
/// is unlikely and the failed tries would cost more than they save.
fn event_window_hours(
    since: Option<soc_model::Timestamp>,
    until: Option<soc_model::Timestamp>,
    now: soc_model::Timestamp,
) -> Vec<i64> {
    const HOUR: i64 = 3_600_000_000;
    let span = since.map(|s| until.unwrap_or(now).unix_micros().saturating_sub(s.unix_micros()));
    EVENT_WINDOW_HOURS.iter().copied().filter(|h| span.is_none_or(|span| h.saturating_mul(4 * HOUR) < span)).collect()
}

/// Queries with long `IN (...)` lists go beyond the default 256 KiB query size.
const MAX_QUERY_SIZE: &str = "16777216";
/// Ids per phase-two or version-lookup query.
const ID_CHUNK: usize = 5_000;

fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Keeps the first row of each id (duplicates of a row not merged yet), in order.
fn dedupe_keys(rows: Vec<KeyRow>) -> Vec<KeyRow> {
    let mut seen = HashSet::new();
    rows.into_iter().filter(|r| seen.insert(r.id.clone())).collect()
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
        self.migrate_to(u32::MAX).await
    }

    /// Applies the pending migrations up to version `max` (tests build older schemas).
    async fn migrate_to(&self, max: u32) -> Result<Vec<u32>, StoreError> {
        self.bounded(self.timeout, self.client.query_raw(migrations::clickhouse::BOOKKEEPING).execute()).await?;
        let applied = self.applied_versions().await?;
        let mut done = Vec::new();
        for m in migrations::pending(migrations::CLICKHOUSE, &applied).into_iter().filter(|m| m.version <= max) {
            tracing::info!(store = NAME, database = %self.database, version = m.version, name = m.name, "applying migration");
            for stmt in m.statements {
                self.bounded(self.timeout, self.client.query_raw(stmt).execute()).await.map_err(|e| match e {
                    e @ StoreError::Unavailable { .. } => e,
                    other => StoreError::Migration { version: m.version, reason: other.to_string() },
                })?;
            }
            // Derived tables are filled before the version is recorded: a fill that fails is
            // tried again at the next start instead of leaving them without the older records.
            if m.version == 3 {
                self.backfill_derived().await?;
            }
            if m.version == 4 {
                self.fill_migration_4().await?;
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
        // The stored versions of the batch's alerts are read while the records are written
        // (a read, independent of that write): one round trip less per batch. The alert and
        // GeoIP rows follow, in that order, only once the records are stored.
        let alert_rows = alerts::project_batch(events);
        let (_, stored) = tokio::try_join!(self.bounded(self.timeout, write), self.stored_alert_versions(&alert_rows))?;
        let known = self.write_alert_rows(alert_rows, stored).await?;
        self.write_geo(events, &known).await?;
        telemetry::inserted(NAME, events.len(), started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Fills the tables of migration 3 from the records stored before it: hourly counts with
    /// `INSERT ... SELECT`, alerts and GeoIP rows (and through their views the hourly rule and
    /// GeoIP counts) in batches.
    ///
    /// Starts from empty tables, so a fill that failed half-way can simply run again (the
    /// migration is recorded only after it succeeded, and nothing else writes triage state
    /// before the store has migrated).
    async fn backfill_derived(&self) -> Result<(), StoreError> {
        const BATCH: usize = 10_000;
        for table in [
            "alerts",
            "event_geo",
            "stats_events_hourly",
            "stats_rules_hourly",
            "stats_talkers_hourly",
            "stats_geo_hourly",
        ] {
            self.bounded(self.timeout, self.client.query(&format!("TRUNCATE TABLE IF EXISTS {table}")).execute())
                .await?;
        }
        // Hourly counts of the records stored before (the views only see new inserts); alerts
        // and detections are counted through the alerts table's views as its rows are filled.
        for sql in [
            "INSERT INTO stats_events_hourly SELECT toStartOfHour(ts) AS hour, event_type, ifNull(segment, '') AS seg, \
             count() AS c FROM events FINAL WHERE event_type NOT IN ('alert', 'detection') GROUP BY hour, event_type, seg",
            "INSERT INTO stats_talkers_hourly SELECT toStartOfHour(ts) AS hour, ifNull(segment, '') AS seg, \
             assumeNotNull(src_ip) AS ip, count() AS c FROM events FINAL WHERE isNotNull(src_ip) AND src_ip != '' \
             AND event_type NOT IN ('alert', 'detection') GROUP BY hour, seg, ip",
        ] {
            self.bounded(self.timeout, self.client.query(sql).execute()).await?;
        }
        let mut cursor = self
            .client
            .query(
                "SELECT json FROM events WHERE event_type IN ('alert', 'detection') OR position(json, '\"geoip\"') > 0",
            )
            .fetch::<JsonRow>()
            .map_err(|e| self.map_err(e))?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut n = 0usize;
        loop {
            let row = self.bounded(self.timeout, cursor.next()).await?;
            let end = row.is_none();
            if let Some(r) = row {
                match crate::decode_event(&r.json) {
                    Ok(e) => batch.push(e),
                    Err(e) => tracing::warn!(store = NAME, error = %e, "alerts backfill: stored record skipped"),
                }
            }
            if batch.len() >= BATCH || (end && !batch.is_empty()) {
                let known = self.write_alerts(&batch).await?;
                self.write_geo(&batch, &known).await?;
                n += batch.len();
                batch.clear();
            }
            if end {
                break;
            }
        }
        tracing::info!(store = NAME, database = %self.database, records = n, "alerts table filled from stored records");
        Ok(())
    }

    /// Fills the tables of migration 4 from the stored data: the triage state held in the
    /// alert rows until then (the latest version of every alert that has more than one,
    /// unless it is the untouched default) moves to `alert_state`, keeping its version; the
    /// daily talkers are the sums of the hourly ones.
    ///
    /// Starts from empty tables, so a fill that failed half-way runs again from scratch (the
    /// migration is recorded only after it succeeded; nothing writes triage state to
    /// `alert_state` before the store has migrated). Rows inserted while this runs reach
    /// the daily talkers through its views and may be counted twice there.
    async fn fill_migration_4(&self) -> Result<(), StoreError> {
        for table in ["alert_state", "stats_talkers_daily"] {
            self.bounded(self.timeout, self.client.query(&format!("TRUNCATE TABLE IF EXISTS {table}")).execute())
                .await?;
        }
        for sql in [
            "INSERT INTO alert_state SELECT id, ts, ts_us, kind, severity, rule_id, rule_title, segment, sensor, \
             src_ip, dest_ip, st, ow, ve, inc, v FROM (\
               SELECT id, ts, ts_us, kind, severity, rule_id, rule_title, segment, sensor, src_ip, dest_ip, \
                 argMax(status, version) AS st, argMax(owner, version) AS ow, argMax(verdict, version) AS ve, \
                 argMax(incident_id, version) AS inc, max(version) AS v \
               FROM alerts PREWHERE id IN (SELECT id FROM alerts WHERE version > 1) \
               GROUP BY id, ts, ts_us, kind, severity, rule_id, rule_title, segment, sensor, src_ip, dest_ip) \
             WHERE st != 'new' OR ow != '' OR ve != '' OR inc != ''",
            "INSERT INTO stats_talkers_daily SELECT toDate(hour) AS day, seg, ip, sum(c) AS c \
             FROM stats_talkers_hourly GROUP BY day, seg, ip",
        ] {
            self.bounded(self.timeout, self.client.query(sql).execute()).await?;
        }
        tracing::info!(store = NAME, database = %self.database, "triage state moved to alert_state, daily talkers filled");
        Ok(())
    }

    /// The GeoIP rows of a batch; alerts already stored (`known`: re-emitted or delivered
    /// again) are skipped, so the hourly GeoIP counts count each alert once.
    async fn write_geo(&self, events: &[Event], known: &HashSet<String>) -> Result<(), StoreError> {
        let rows: Vec<GeoRow> = events
            .iter()
            .filter(|e| e.id.as_ref().is_none_or(|id| !known.contains(id)))
            .filter_map(|e| {
                let [src_country, dest_country, src_asn, dest_asn] = summary::geo_of(e)?;
                Some(GeoRow {
                    id: e.id.clone().unwrap_or_default(),
                    ts: filter::clamp_secs(e.timestamp.unix_secs()),
                    ts_us: e.timestamp.unix_micros(),
                    segment: e.segment.clone().unwrap_or_default(),
                    src_country,
                    dest_country,
                    src_asn,
                    dest_asn,
                })
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let write = async {
            let mut insert = self.client.insert::<GeoRow>("event_geo").await?;
            for r in &rows {
                insert.write(r).await?;
            }
            insert.end().await
        };
        self.bounded(self.timeout, write).await
    }

    /// The alert rows of a batch, as next versions of the stored ones. Returns the ids that
    /// were already stored.
    async fn write_alerts(&self, events: &[Event]) -> Result<HashSet<String>, StoreError> {
        let rows = alerts::project_batch(events);
        let stored = self.stored_alert_versions(&rows).await?;
        self.write_alert_rows(rows, stored).await
    }

    /// Writes `rows` as next versions of the `stored` ones (from [`Self::stored_alert_versions`]
    /// of the same rows); returns the ids that were already stored.
    async fn write_alert_rows(
        &self,
        rows: Vec<AlertRecord>,
        mut stored: HashMap<String, (u64, u64, AlertState)>,
    ) -> Result<HashSet<String>, StoreError> {
        if rows.is_empty() {
            return Ok(HashSet::new());
        }
        let known: HashSet<String> = stored.keys().cloned().collect();
        let out: Vec<AlertColumns> = rows
            .into_iter()
            .filter_map(|r| {
                let s = stored.remove(&r.id);
                alerts::next_version(r, s)
            })
            .map(|r| r.columns())
            .collect();
        if out.is_empty() {
            return Ok(known);
        }
        let write = async {
            let mut insert = self.client.insert::<AlertColumns>("alerts").await?;
            for r in &out {
                insert.write(r).await?;
            }
            insert.end().await
        };
        self.bounded(self.timeout, write).await?;
        Ok(known)
    }

    /// Version and count of the stored alerts among `rows` (by id), with a default state.
    async fn stored_alert_versions(
        &self,
        rows: &[AlertRecord],
    ) -> Result<HashMap<String, (u64, u64, AlertState)>, StoreError> {
        let mut out = HashMap::new();
        for chunk in rows.chunks(ID_CHUNK) {
            let (lo, hi) = chunk.iter().fold((u32::MAX, 0u32), |(lo, hi), r| {
                let t = filter::clamp_secs(r.timestamp.unix_secs());
                (lo.min(t), hi.max(t))
            });
            let sql = format!(
                "SELECT id, version, count FROM alerts \
                 PREWHERE id IN ({}) WHERE ts >= toDateTime(?) AND ts <= toDateTime(?) \
                 ORDER BY id, version DESC LIMIT 1 BY id",
                marks(chunk.len())
            );
            // PREWHERE: 18.16 does not move the id test there by itself, and would read every
            // selected column of the time range.
            let mut q = self.client.query(&sql).with_setting("max_query_size", MAX_QUERY_SIZE);
            for r in chunk {
                q = q.bind(r.id.as_str());
            }
            q = q.bind(lo).bind(hi);
            for v in self.bounded(self.timeout, q.fetch_all::<AlertVersionRow>()).await? {
                // The triage state is not part of the row (it lives in `alert_state`).
                out.insert(v.id, (v.version, v.count, AlertState::default()));
            }
        }
        Ok(out)
    }

    /// Phase one of an event read: the sort keys of the first `limit` distinct ids of
    /// `SELECT id, ts_us, event_type FROM events PREWHERE {fine} WHERE {coarse} ORDER BY
    /// {order of q}`. `fine` (the per-row conditions, empty when none) is evaluated first so
    /// the other columns are read only for the granules it matches; in time order the newest
    /// (or oldest) hours are tried first ([`time_windows`]), widening only while the page is
    /// not full ([`Self::probe_windows`]).
    async fn event_keys(
        &self,
        q: &EventQuery,
        coarse: &filter::Where,
        fine: &filter::Where,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let limit = q.effective_limit();
        let order = filter::order_by(q);
        let cols = "id, ts_us, event_type AS aux";
        let prewhere = if fine.sql.is_empty() { String::new() } else { format!("PREWHERE {} ", fine.sql) };
        let coarse_sql = if coarse.sql.is_empty() { "1 = 1" } else { coarse.sql.as_str() };
        let read = |win: Option<&filter::Where>, tail: &str| {
            let win_sql = win.map(|w| format!(" AND {}", w.sql)).unwrap_or_default();
            let sql =
                format!("SELECT {cols} FROM events {prewhere}WHERE {coarse_sql}{win_sql} ORDER BY {order} {tail}");
            let mut params = fine.params.clone();
            params.extend(coarse.params.iter().cloned());
            params.extend(win.into_iter().flat_map(|w| w.params.iter().cloned()));
            (sql, params)
        };
        let now = soc_model::Timestamp::now();
        let windows = time_windows(&event_window_hours(q.since, q.until, now), q.newest_first, q.since, q.until, now);
        self.probe_windows(windows, limit, read).await
    }

    /// The first `want` distinct ids (with their sort keys) of a read in some order, trying
    /// `windows` in turn (narrowest first, `None` the whole range, last) until one holds a full
    /// page: `read(window, tail)` gives the statement (ending with `tail`, its `LIMIT`) and
    /// its parameters. Reads a few more rows than needed (duplicates or versions not merged
    /// yet come as extra rows) and falls back to an exact `LIMIT 1 BY id` read of the whole
    /// range when that was not enough.
    async fn probe_windows(
        &self,
        windows: Vec<Option<filter::Where>>,
        want: usize,
        read: impl Fn(Option<&filter::Where>, &str) -> (String, Vec<Param>),
    ) -> Result<Vec<KeyRow>, StoreError> {
        if want == 0 {
            return Ok(Vec::new());
        }
        let fetch = want + want / 4 + 16;
        let keys = |(sql, params): (String, Vec<Param>)| {
            self.bounded(
                self.timeout,
                bind(self.client.query(&sql).with_setting("max_query_size", MAX_QUERY_SIZE), params)
                    .fetch_all::<KeyRow>(),
            )
        };
        for win in windows {
            let last = win.is_none();
            let rows = keys(read(win.as_ref(), &format!("LIMIT {fetch}"))).await?;
            let exhausted = rows.len() < fetch;
            let mut found = dedupe_keys(rows);
            if found.len() >= want || (last && exhausted) {
                found.truncate(want);
                return Ok(found);
            }
            if !last {
                continue;
            }
            // Duplicates not merged yet took more than the margin: the exact (slower) read.
            let mut found = dedupe_keys(keys(read(None, &format!("LIMIT 1 BY id LIMIT {want}"))).await?);
            found.truncate(want);
            return Ok(found);
        }
        Ok(Vec::new())
    }

    /// Phase two for events: the JSON of `keys` (from [`Self::first_keys`] over `events`),
    /// in the keys' order.
    async fn events_of_keys(&self, keys: &[KeyRow]) -> Result<Vec<Event>, StoreError> {
        let mut json: HashMap<String, String> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(ID_CHUNK) {
            let types: Vec<&str> = {
                let mut t: Vec<&str> = chunk.iter().map(|k| k.aux.as_str()).collect();
                t.sort_unstable();
                t.dedup();
                t
            };
            let (lo, hi) = chunk.iter().fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k.ts_us), hi.max(k.ts_us)));
            let sql = format!(
                "SELECT id, json FROM events PREWHERE id IN ({}) \
                 WHERE event_type IN ({}) AND ts >= toDateTime(?) AND ts <= toDateTime(?) LIMIT 1 BY id",
                marks(chunk.len()),
                marks(types.len())
            );
            let mut q = self.client.query(&sql).with_setting("max_query_size", MAX_QUERY_SIZE);
            for k in chunk {
                q = q.bind(k.id.as_str());
            }
            for t in types {
                q = q.bind(t);
            }
            q = q.bind(filter::clamp_secs(lo.div_euclid(1_000_000))).bind(filter::clamp_secs(hi.div_euclid(1_000_000)));
            for r in self.bounded(self.timeout, q.fetch_all::<IdJsonRow>()).await? {
                json.insert(r.id, r.json);
            }
        }
        keys.iter().filter_map(|k| json.get(&k.id)).map(|j| crate::decode_event(j)).collect()
    }

    /// Phase two for alerts: the highest version of each key's row with its triage state,
    /// in the keys' order.
    async fn alerts_of_keys(&self, keys: &[KeyRow]) -> Result<Vec<AlertRecord>, StoreError> {
        let mut rows: HashMap<String, AlertColumns> = HashMap::with_capacity(keys.len());
        let mut states: HashMap<String, (AlertState, u64)> = HashMap::new();
        for chunk in keys.chunks(ID_CHUNK) {
            let (lo, hi) = chunk.iter().fold((i64::MAX, i64::MIN), |(lo, hi), k| (lo.min(k.ts_us), hi.max(k.ts_us)));
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts PREWHERE id IN ({}) \
                 WHERE ts >= toDateTime(?) AND ts <= toDateTime(?) ORDER BY id, version DESC LIMIT 1 BY id",
                marks(chunk.len())
            );
            let mut q = self.client.query(&sql).with_setting("max_query_size", MAX_QUERY_SIZE);
            for k in chunk {
                q = q.bind(k.id.as_str());
            }
            q = q.bind(filter::clamp_secs(lo.div_euclid(1_000_000))).bind(filter::clamp_secs(hi.div_euclid(1_000_000)));
            let ids: Vec<&str> = chunk.iter().map(|k| k.id.as_str()).collect();
            let (found, st) = tokio::try_join!(
                self.bounded(self.timeout, q.fetch_all::<AlertColumns>()),
                self.states_of(&ids, lo, hi)
            )?;
            for r in found {
                rows.insert(r.id.clone(), r);
            }
            states.extend(st);
        }
        keys.iter()
            .filter_map(|k| rows.remove(&k.id))
            .map(|r| {
                let mut rec = r.into_record()?;
                let st = states.remove(&rec.id);
                with_state(&mut rec, st);
                Ok(rec)
            })
            .collect()
    }

    /// The latest triage state (and its version) of each of `ids` that has one; `lo`..=`hi`
    /// (microseconds) bounds the alerts' times.
    async fn states_of(
        &self,
        ids: &[&str],
        lo: i64,
        hi: i64,
    ) -> Result<HashMap<String, (AlertState, u64)>, StoreError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(ID_CHUNK) {
            let sql = format!(
                "SELECT id, status, owner, verdict, incident_id, version FROM alert_state PREWHERE id IN ({}) \
                 WHERE ts >= toDateTime(?) AND ts <= toDateTime(?) ORDER BY id, version DESC LIMIT 1 BY id",
                marks(chunk.len())
            );
            let mut q = self.client.query(&sql).with_setting("max_query_size", MAX_QUERY_SIZE);
            for id in chunk {
                q = q.bind(*id);
            }
            q = q.bind(filter::clamp_secs(lo.div_euclid(1_000_000))).bind(filter::clamp_secs(hi.div_euclid(1_000_000)));
            for v in self.bounded(self.timeout, q.fetch_all::<StateVersionRow>()).await? {
                let state = AlertState {
                    status: v.status,
                    owner: Some(v.owner).filter(|s| !s.is_empty()),
                    verdict: Some(v.verdict).filter(|s| !s.is_empty()),
                    incident_id: Some(v.incident_id).filter(|s| !s.is_empty()),
                };
                out.insert(v.id, (state, v.version));
            }
        }
        Ok(out)
    }

    /// Phase one of an alert list: the sort keys of the first `want` distinct ids of
    /// `alerts WHERE {fixed} AND {cond}` in `q`'s order. Ordered by time, the newest (or
    /// oldest) hour is tried first, then 6 hours, 2 days and the whole range, until a window
    /// holds a full page ([`Self::probe_windows`]): 18.16 cannot read in key order, and a
    /// window reads only its own key range (partition and `ts` pruning), so the first page of
    /// a week costs about the same as the first page of an hour.
    async fn alert_keys(
        &self,
        q: &AlertQuery,
        fixed: &filter::Where,
        cond: &filter::Where,
        want: usize,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let order = alerts::order_by(q);
        let cols = "id, ts_us, toString(severity) AS aux";
        let read = |win: Option<&filter::Where>, tail: &str| {
            let win_sql = win.map(|w| format!(" AND {}", w.sql)).unwrap_or_default();
            let sql = format!(
                "SELECT {cols} FROM alerts WHERE {}{win_sql} AND ({}) ORDER BY {order} {tail}",
                fixed.sql, cond.sql
            );
            let mut params = fixed.params.clone();
            params.extend(win.into_iter().flat_map(|w| w.params.iter().cloned()));
            params.extend(cond.params.iter().cloned());
            (sql, params)
        };
        self.probe_windows(alert_windows(q, soc_model::Timestamp::now()), want, read).await
    }

    /// How many distinct alerts match `fixed` (and `cond`, a condition over columns that do
    /// not change between versions). With only a time range and a scope, whole hours are
    /// summed from `stats_events_hourly` (which counts the first version of each alert) and
    /// only the partial hours at the edges are counted in `alerts`.
    async fn count_alerts(
        &self,
        q: &AlertQuery,
        fixed: &filter::Where,
        cond: Option<&filter::Where>,
    ) -> Result<u64, StoreError> {
        let plain = cond.is_none()
            && q.id.is_none()
            && q.sensor.is_none()
            && q.ip.is_none()
            && q.severities.is_none()
            && q.rule.as_ref().is_none_or(|r| r.is_empty());
        let parts = summary::split_hours(q.since, q.until, 3_600_000_000);
        if plain && parts.use_hours {
            let mut params = Vec::new();
            let mut c = vec!["event_type IN ('alert', 'detection')".to_string()];
            c.push(seg_scope("seg", q.segments.as_deref(), &mut params));
            if let Some(h) = parts.hours_from {
                c.push("hour >= toDateTime(?)".into());
                params.push(Param::U32(filter::clamp_secs(h.div_euclid(1_000_000))));
            }
            if let Some(h) = parts.hours_until {
                c.push("hour < toDateTime(?)".into());
                params.push(Param::U32(filter::clamp_secs(h.div_euclid(1_000_000))));
            }
            // One round trip: the whole hours, and the distinct ids of the partial ones (at
            // most an hour at each edge).
            let mut branches = vec![format!("SELECT sum(c) AS n FROM stats_events_hourly WHERE {}", c.join(" AND "))];
            for (since, until) in &parts.raw {
                let eq =
                    AlertQuery { since: *since, until: *until, segments: q.segments.clone(), ..Default::default() };
                let w = alerts::build_fixed(&eq, Dialect::ClickHouse);
                branches.push(format!("SELECT uniqExact(id) AS n FROM alerts WHERE {}", w.sql));
                params.extend(w.params);
            }
            let sql = format!("SELECT sum(n) FROM ({})", branches.join(" UNION ALL "));
            return self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_one::<u64>()).await;
        }
        self.count_distinct(fixed, cond).await
    }

    /// Distinct ids of `alerts WHERE {w} AND {cond}`: rows minus the extra rows of the ids
    /// that have more than one version (few: re-emitted alerts), counted through `version`.
    async fn count_distinct(&self, w: &filter::Where, cond: Option<&filter::Where>) -> Result<u64, StoreError> {
        let (csql, cparams) = match cond {
            Some(c) => (format!("({})", c.sql), c.params.clone()),
            None => ("1 = 1".to_string(), Vec::new()),
        };
        let mut p1 = w.params.clone();
        p1.extend(cparams.iter().cloned());
        let rows_sql = format!("SELECT count() FROM alerts WHERE {} AND {csql}", w.sql);
        let extra_sql = format!(
            "SELECT count() - uniqExact(id) FROM alerts WHERE {w} AND {csql} \
             AND id IN (SELECT id FROM alerts WHERE {w} AND version > 1)",
            w = w.sql
        );
        let mut p2 = p1.clone();
        p2.extend(w.params.iter().cloned());
        let (rows, extra) = tokio::try_join!(
            self.bounded(self.timeout, bind(self.client.query(&rows_sql), p1).fetch_one::<u64>()),
            self.bounded(self.timeout, bind(self.client.query(&extra_sql), p2).fetch_one::<u64>())
        )?;
        Ok(rows.saturating_sub(extra))
    }

    async fn query_alerts_inner(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        // Alert rows (`alerts`) change only when the correlator re-emits an alert; triage
        // state lives in `alert_state` (few rows: the triaged alerts), and an alert without
        // a state row is `new`. Lists read the page's keys from `alerts` (time windows, see
        // `alert_keys`) and the total from the hourly counts; status filters are answered
        // from `alert_state`, joined to `alerts` only through id sets.
        let fixed = alerts::build_fixed(q, Dialect::ClickHouse);
        if q.id.is_some() {
            // One alert (detail, actions): its latest version and state.
            let sql = format!(
                "SELECT {ALERT_COLUMNS} FROM alerts PREWHERE id = ? WHERE {} ORDER BY version DESC LIMIT 1",
                fixed.sql
            );
            let mut params = vec![Param::Str(q.id.clone().unwrap_or_default())];
            params.extend(fixed.params);
            let rows =
                self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_all::<AlertColumns>()).await?;
            let mut items = Vec::new();
            for row in rows {
                let mut r = row.into_record()?;
                let t = r.timestamp.unix_micros();
                let mut st = self.states_of(&[r.id.as_str()], t, t).await?;
                let found = st.remove(&r.id);
                with_state(&mut r, found);
                r.state.status = q.effective_status(&r);
                if q.statuses.as_ref().is_none_or(|s| s.contains(&r.state.status)) {
                    items.push(r);
                }
            }
            let total = items.len() as u64;
            let items = items.into_iter().skip(q.offset).take(q.effective_limit()).collect();
            return Ok(AlertPage { total, items });
        }
        let want = q.offset.saturating_add(q.effective_limit());
        let (mut keys, total) = match &q.statuses {
            None => {
                let always = filter::Where { sql: "1 = 1".into(), params: Vec::new() };
                tokio::try_join!(self.alert_keys(q, &fixed, &always, want), self.count_alerts(q, &fixed, None))?
            }
            Some(statuses) if statuses.is_empty() => (Vec::new(), 0),
            Some(statuses) => {
                let in_s = format!("IN ({})", marks(statuses.len()));
                let s_params: Vec<Param> = statuses.iter().cloned().map(Param::Str).collect();
                // The effective status of a state row (`st`), and of an alert without one.
                let mut eff_params = Vec::new();
                let eff = alerts::status_expr(q, Dialect::ClickHouse, "st", &mut eff_params);
                let mut new_params = Vec::new();
                let new_eff = alerts::status_expr(q, Dialect::ClickHouse, "'new'", &mut new_params);
                new_params.extend(s_params.iter().cloned());
                let new_in = filter::Where { sql: format!("{new_eff} {in_s}"), params: new_params };
                let untriaged_can_match = statuses.iter().any(|s| s == "new")
                    || (statuses.iter().any(|s| s == "suppressed") && !q.suppressions.is_empty());
                // The latest state of each triaged alert matching `fixed`.
                let latest = format!(
                    "SELECT id, ts_us, severity, kind, rule_id, segment, argMax(status, version) AS st \
                     FROM alert_state WHERE {} GROUP BY id, ts_us, severity, kind, rule_id, segment",
                    fixed.sql
                );
                // Counts over the triaged alerts: those whose status matches, and those an
                // untriaged count would include (subtracted from it).
                let counts_sql = format!(
                    "SELECT countIf({eff} {in_s}) AS matching, countIf({}) AS as_new FROM ({latest})",
                    new_in.sql
                );
                let mut counts_params = eff_params.clone();
                counts_params.extend(s_params.iter().cloned());
                counts_params.extend(new_in.params.iter().cloned());
                counts_params.extend(fixed.params.iter().cloned());
                let counts = self.bounded(
                    self.timeout,
                    bind(self.client.query(&counts_sql), counts_params).fetch_one::<StateCounts>(),
                );
                if untriaged_can_match {
                    // Untriaged rows whose `new` matches, and triaged ones whose state matches.
                    let cond = filter::Where {
                        sql: format!(
                            "({new} AND id NOT IN (SELECT id FROM alert_state WHERE {f})) \
                             OR id IN (SELECT id FROM ({latest}) WHERE {eff} {in_s})",
                            new = new_in.sql,
                            f = fixed.sql
                        ),
                        params: {
                            let mut p = new_in.params.clone();
                            p.extend(fixed.params.iter().cloned());
                            p.extend(fixed.params.iter().cloned());
                            p.extend(eff_params.iter().cloned());
                            p.extend(s_params.iter().cloned());
                            p
                        },
                    };
                    let untriaged = async {
                        if q.suppressions.is_empty() {
                            // `new` matches every alert without a state row.
                            self.count_alerts(q, &fixed, None).await
                        } else {
                            self.count_distinct(&fixed, Some(&new_in)).await
                        }
                    };
                    let (keys, all_new, c) =
                        tokio::try_join!(self.alert_keys(q, &fixed, &cond, want), untriaged, counts)?;
                    (keys, all_new.saturating_sub(c.as_new) + c.matching)
                } else {
                    // Only triaged alerts can match: the page comes from `alert_state` alone.
                    let order = alerts::order_by(q);
                    let sql = format!(
                        "SELECT id, ts_us, toString(severity) AS aux FROM ({latest}) WHERE {eff} {in_s} \
                         ORDER BY {order} LIMIT {want}"
                    );
                    let mut params = fixed.params.clone();
                    params.extend(eff_params.iter().cloned());
                    params.extend(s_params.iter().cloned());
                    let keys = self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_all::<KeyRow>());
                    let (keys, c) = tokio::try_join!(keys, counts)?;
                    (keys, c.matching)
                }
            }
        };
        let keys: Vec<KeyRow> = keys.drain(q.offset.min(keys.len())..).collect();
        let mut items = self.alerts_of_keys(&keys).await?;
        alerts::sort_records(q, &mut items);
        for r in items.iter_mut() {
            r.state.status = q.effective_status(r);
        }
        Ok(AlertPage { total, items })
    }

    async fn update_alert_inner(&self, id: &str, state: &AlertState) -> Result<Option<AlertRecord>, StoreError> {
        alerts::check_state(state)?;
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts PREWHERE id = ? ORDER BY version DESC LIMIT 1");
        let rows = self.bounded(self.timeout, self.client.query(&sql).bind(id).fetch_all::<AlertColumns>()).await?;
        let Some(row) = rows.into_iter().next() else { return Ok(None) };
        let mut rec = row.into_record()?;
        let t = rec.timestamp.unix_micros();
        let prev = self.states_of(&[id], t, t).await?.remove(id).map(|(_, v)| v).unwrap_or(0);
        // Above the row's version too, so the record's version grows with every change.
        rec.version = prev.max(rec.version) + 1;
        rec.state = state.clone();
        let out = StateRow::of(&rec);
        let write = async {
            let mut insert = self.client.insert::<StateRow>("alert_state").await?;
            insert.write(&out).await?;
            insert.end().await
        };
        self.bounded(self.timeout, write).await?;
        Ok(Some(rec))
    }
    async fn summary_inner(&self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        summary::check(q)?;
        let b = q.bucket_micros;
        let top = q.top;
        let parts = summary::split_hours(q.base.since, q.base.until, b);
        let scope = |col: &str, params: &mut Vec<Param>| -> String {
            match &q.base.segments {
                None => "1 = 1".into(),
                Some(v) if v.is_empty() => "1 = 0".into(),
                Some(v) => {
                    params.extend(v.iter().cloned().map(Param::Str));
                    format!("{col} IN ({})", marks(v.len()))
                }
            }
        };
        // The time condition of the hourly tables' part.
        let hours = |params: &mut Vec<Param>| -> String {
            let mut c = vec![scope("seg", params)];
            if let Some(h) = parts.hours_from {
                c.push("hour >= toDateTime(?)".into());
                params.push(Param::U32(filter::clamp_secs(h.div_euclid(1_000_000))));
            }
            if let Some(h) = parts.hours_until {
                c.push("hour < toDateTime(?)".into());
                params.push(Param::U32(filter::clamp_secs(h.div_euclid(1_000_000))));
            }
            c.join(" AND ")
        };
        // The time condition of the raw rows' parts (the partial hours at the edges, or the
        // whole range when the hourly tables do not apply): `(range) OR (range)`.
        let raw = |params: &mut Vec<Param>, seg_col: &str| -> String {
            let mut ors = Vec::new();
            for (from, until) in &parts.raw {
                let w = filter::build(
                    &EventQuery { since: *from, until: *until, segments: None, ..Default::default() },
                    Dialect::ClickHouse,
                );
                ors.push(format!("({})", w.sql));
                params.extend(w.params);
            }
            let time = if ors.is_empty() { "1 = 0".to_string() } else { ors.join(" OR ") };
            format!("({time}) AND {}", scope(seg_col, params))
        };
        let use_hours = parts.use_hours;
        let mut out = Summary::default();

        // 1. Types x segments x buckets (alert buckets only; other types in one bucket 0).
        let mut params = Vec::new();
        let mut branches = Vec::new();
        if use_hours {
            let w = hours(&mut params);
            branches.push(format!(
                "SELECT event_type AS t, seg AS s, \
                 if(t IN ('alert', 'detection'), intDiv(toInt64(toUInt32(hour)) * 1000000, {b}) * {b}, 0) AS b, \
                 sum(c) AS c FROM stats_events_hourly WHERE {w} GROUP BY t, s, b"
            ));
        }
        let w = raw(&mut params, "segment");
        branches.push(format!(
            "SELECT event_type AS t, ifNull(segment, '') AS s, \
             if(t IN ('alert', 'detection'), intDiv(ts_us, {b}) * {b}, 0) AS b, count() AS c \
             FROM events WHERE {w} GROUP BY t, s, b"
        ));
        let sql = format!("SELECT t, s, b, sum(c) AS c FROM ({}) GROUP BY t, s, b", branches.join(" UNION ALL "));
        let types = self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_all::<TypeSegBucket>());

        // 2. Top rules: alerts counted once (the hourly table counts first versions only;
        //    the raw part distinct ids).
        let mut params = Vec::new();
        let mut branches = Vec::new();
        if use_hours {
            let w = hours(&mut params);
            branches.push(format!("SELECT rule_title AS k, sum(c) AS c FROM stats_rules_hourly WHERE {w} GROUP BY k"));
        }
        let w = raw(&mut params, "segment");
        branches.push(format!("SELECT rule_title AS k, uniqExact(id) AS c FROM alerts WHERE {w} GROUP BY k"));
        let sql = format!(
            "SELECT k, sum(c) AS c FROM ({}) WHERE k != '' GROUP BY k ORDER BY c DESC, k ASC LIMIT {top}",
            branches.join(" UNION ALL ")
        );
        let rules = self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_all::<KeyCount>());

        // 3. Top talkers.
        //    Whole days from the daily table (segment first in its key), the other whole
        //    hours from the hourly one.
        let mut params = Vec::new();
        let mut branches = Vec::new();
        if use_hours {
            const DAY_US: i64 = 86_400 * 1_000_000;
            let day_from = parts.hours_from.map(|h| h.div_euclid(DAY_US) + i64::from(h.rem_euclid(DAY_US) != 0));
            let day_until = parts.hours_until.map(|h| h.div_euclid(DAY_US));
            if matches!((day_from, day_until), (Some(a), Some(b)) if a >= b) {
                let w = hours(&mut params);
                branches.push(format!("SELECT ip AS k, sum(c) AS c FROM stats_talkers_hourly WHERE {w} GROUP BY k"));
            } else {
                let mut c = vec![scope("seg", &mut params)];
                if let Some(d) = day_from {
                    c.push("day >= toDate(?)".into());
                    params.push(Param::Str(iso_date(d)));
                }
                if let Some(d) = day_until {
                    c.push("day < toDate(?)".into());
                    params.push(Param::Str(iso_date(d)));
                }
                branches.push(format!(
                    "SELECT ip AS k, sum(c) AS c FROM stats_talkers_daily WHERE {} GROUP BY k",
                    c.join(" AND ")
                ));
                // The whole hours before the first whole day and after the last one.
                let mut ors = Vec::new();
                let mut hour_params = Vec::new();
                for (from, until) in [
                    (parts.hours_from, day_from.map(|d| d * DAY_US)),
                    (day_until.map(|d| d * DAY_US), parts.hours_until),
                ] {
                    let (Some(f), Some(u)) = (from, until) else { continue };
                    if f < u {
                        ors.push("(hour >= toDateTime(?) AND hour < toDateTime(?))");
                        hour_params.push(Param::U32(filter::clamp_secs(f.div_euclid(1_000_000))));
                        hour_params.push(Param::U32(filter::clamp_secs(u.div_euclid(1_000_000))));
                    }
                }
                if !ors.is_empty() {
                    let sc = scope("seg", &mut params);
                    params.extend(hour_params);
                    branches.push(format!(
                        "SELECT ip AS k, sum(c) AS c FROM stats_talkers_hourly WHERE {sc} AND ({}) GROUP BY k",
                        ors.join(" OR ")
                    ));
                }
            }
        }
        let w = raw(&mut params, "segment");
        branches.push(format!(
            "SELECT assumeNotNull(src_ip) AS k, count() AS c FROM events WHERE {w} AND isNotNull(src_ip) GROUP BY k"
        ));
        let sql = format!(
            "SELECT k, sum(c) AS c FROM ({}) WHERE k != '' GROUP BY k ORDER BY c DESC, k ASC LIMIT {top}",
            branches.join(" UNION ALL ")
        );
        let talkers = self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_all::<KeyCount>());

        // 4. GeoIP: countries and ASNs of both directions in one query.
        let mut params = Vec::new();
        let mut branches = Vec::new();
        if use_hours {
            let w = hours(&mut params);
            branches.push(format!(
                "SELECT field AS f, key AS k, sum(c) AS c FROM stats_geo_hourly WHERE {w} GROUP BY f, k"
            ));
        }
        let w = raw(&mut params, "segment");
        branches.push(format!(
            "SELECT tupleElement(g, 1) AS f, tupleElement(g, 2) AS k, count() AS c FROM event_geo \
             ARRAY JOIN [('country', src_country), ('country', dest_country), ('asn', src_asn), ('asn', dest_asn)] AS g \
             WHERE {w} GROUP BY f, k"
        ));
        let sql = format!(
            "SELECT f, k, sum(c) AS c FROM ({}) WHERE k != '' GROUP BY f, k ORDER BY c DESC, k ASC LIMIT {top} BY f",
            branches.join(" UNION ALL ")
        );
        let geo = self.bounded(self.timeout, bind(self.client.query(&sql), params).fetch_all::<FieldKeyCount>());

        // The four queries run at once (the server works on them in parallel).
        let (types, rules, talkers, geo) = tokio::try_join!(types, rules, talkers, geo)?;
        let mut per_ts: HashMap<(String, String), u64> = HashMap::new();
        let mut per_bucket: HashMap<i64, u64> = HashMap::new();
        for r in types {
            if r.t == "alert" || r.t == "detection" {
                *per_bucket.entry(r.b).or_default() += r.c;
            }
            *per_ts.entry((r.t, r.s)).or_default() += r.c;
        }
        out.by_type_segment = per_ts.into_iter().map(|((t, s), c)| (t, s, c)).collect();
        out.by_type_segment.sort();
        out.alerts_over_time = per_bucket.into_iter().collect();
        out.alerts_over_time.sort();
        out.top_rules = rules.into_iter().map(|r| (r.k, r.c)).collect();
        out.top_talkers = talkers.into_iter().map(|r| (r.k, r.c)).collect();
        for r in geo {
            match r.f.as_str() {
                "country" => out.countries.push((r.k, r.c)),
                _ => out.asns.push((r.k, r.c)),
            }
        }
        Ok(out)
    }

    async fn search_inner(&self, q: &crate::search::SearchQuery) -> Result<crate::search::SearchResult, StoreError> {
        if q.count_by.is_some() {
            let c = crate::search::compile(q, Dialect::ClickHouse)?;
            let query = bind(self.client.query(&c.sql), c.params);
            let rows = self.bounded(self.timeout, query.fetch_all::<KeyCount>()).await?;
            Ok(crate::search::SearchResult::Counts(rows.into_iter().map(|r| (r.k, r.c)).collect()))
        } else {
            // Two phases: sort keys over narrow columns, then the JSON of the page only.
            let (coarse, fine) = crate::search::compile_where_split(q, Dialect::ClickHouse)?;
            let keys = self.event_keys(&q.base, &coarse, &fine).await?;
            Ok(crate::search::SearchResult::Events(self.events_of_keys(&keys).await?))
        }
    }

    async fn query_inner(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        // Two phases (18.16 cannot read in key order): the sort keys of the page over narrow
        // columns without FINAL (copies not merged yet are dropped by id), then its JSON.
        let (coarse, fine) = filter::build_split(q, Dialect::ClickHouse);
        let keys = self.event_keys(q, &coarse, &fine).await?;
        self.events_of_keys(&keys).await
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
            self.drop_side_days_before(keep_from_day).await?;
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
        self.drop_side_days_before(keep_from_day).await?;
        tracing::info!(store = NAME, keep_from_day, days = ?report.days_dropped, rows = report.rows_dropped, "retention dropped days");
        Ok(report)
    }

    /// Retention of the tables derived from the events (alerts, GeoIP): the same whole days.
    async fn drop_side_days_before(&self, keep_from_day: i64) -> Result<(), StoreError> {
        for table in summary::DERIVED_TABLES {
            let ids: Vec<String> = self
                .bounded(
                    self.timeout,
                    self.client
                        .query(
                            "SELECT DISTINCT partition_id FROM system.parts \
                             WHERE database = ? AND table = ? AND active ORDER BY partition_id",
                        )
                        .bind(self.database.as_str())
                        .bind(table)
                        .fetch_all::<String>(),
                )
                .await?;
            for id in ids {
                if yyyymmdd_to_day(&id).is_some_and(|d| d < keep_from_day) {
                    let value: u32 = id.parse().map_err(|_| StoreError::Query(format!("bad partition id {id}")))?;
                    let sql = format!("ALTER TABLE {table} DROP PARTITION ?");
                    self.bounded(self.timeout, self.client.query(&sql).bind(value).execute()).await?;
                }
            }
        }
        Ok(())
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

    /// [`Store::get_incidents`]: `FINAL` collapses each id to its highest version; the id
    /// list is on the sorting key, so only the granules of those ids are read.
    async fn get_incidents_inner(&self, ids: &[String]) -> Result<HashMap<String, Incident>, StoreError> {
        let ids = incidents::distinct_ids(ids);
        let mut out: HashMap<String, Incident> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(crate::INCIDENT_CHUNK) {
            let sql = format!(
                "SELECT incident_id AS id, json FROM incidents FINAL WHERE incident_id IN ({})",
                marks(chunk.len())
            );
            let mut q = self.client.query(&sql).with_setting("max_query_size", MAX_QUERY_SIZE);
            for id in chunk {
                q = q.bind(id.as_str());
            }
            for r in self.bounded(self.timeout, q.fetch_all::<IdJsonRow>()).await? {
                let inc = incidents::decode_incident(&r.json)?;
                if out.get(&r.id).is_none_or(|old| old.version < inc.version) {
                    out.insert(r.id, inc);
                }
            }
        }
        Ok(out)
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

    async fn get_incidents(&self, ids: &[String]) -> Result<HashMap<String, Incident>, StoreError> {
        telemetry::track(NAME, "get_incidents", self.get_incidents_inner(ids).await)
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

    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        telemetry::track(NAME, "query_alerts", self.query_alerts_inner(q).await)
    }

    async fn update_alert(&self, id: &str, state: &AlertState) -> Result<Option<AlertRecord>, StoreError> {
        telemetry::track(NAME, "update_alert", self.update_alert_inner(id, state).await)
    }

    async fn summary(&self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        telemetry::track(NAME, "summary", self.summary_inner(q).await)
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

    /// A store written before migration 4 (triage state in the alert rows) gets it moved to
    /// `alert_state` once: lists and status filters see it, later changes are not undone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migration_4_moves_stored_triage_state_once() {
        let Ok(url) = std::env::var("SOC_TEST_CLICKHOUSE") else {
            assert_ne!(
                std::env::var("SOC_REQUIRE_SERVERS").as_deref(),
                Ok("1"),
                "SOC_TEST_CLICKHOUSE is not set but SOC_REQUIRE_SERVERS=1"
            );
            eprintln!("SKIPPED migration_4_moves_stored_triage_state_once: SOC_TEST_CLICKHOUSE not set");
            return;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let db = format!("soc_m4_{}_{}", std::process::id(), nanos % 1_000_000_000);
        let store = ClickHouseStore::connect(&url, &db, "", "").await.expect("connect");
        let outcome = tokio::spawn({
            let store = store.clone();
            async move {
                assert_eq!(store.migrate_to(3).await.expect("migrations 1-3"), vec![1, 2, 3]);
                let alert = |sid: u64, secs: i64| {
                    let mut e = Event::new(
                        soc_model::EventType::Alert,
                        soc_model::Timestamp::from_unix_micros(1_700_000_000_000_000 + secs * 1_000_000),
                    );
                    e.segment = Some("cpnet".into());
                    e.src_ip = Some("10.0.0.1".into());
                    e.alert = Some(soc_model::Alert {
                        signature_id: Some(sid),
                        signature: Some(format!("ET M4 {sid}")),
                        ..Default::default()
                    });
                    e.ensure_id();
                    e
                };
                let (a1, a2, a3) = (alert(1, 1), alert(2, 2), alert(3, 3));
                store.insert_events(&[a1.clone(), a2.clone(), a3.clone()]).await.expect("insert");
                let id = |e: &Event| e.id.clone().unwrap_or_default();
                // Triage as stored before migration 4: a next version of the alert row with the
                // state; a2 delivered again (a version with the default state).
                let copy = |status: &str, owner: &str| {
                    format!(
                        "INSERT INTO alerts SELECT id, ts, ts_us, kind, severity, rule_id, rule_title, category, \
                         segment, sensor, src_ip, dest_ip, host, user, entities, tags, count, '{status}', '{owner}', \
                         '', '', 2, json FROM alerts WHERE id = ?"
                    )
                };
                store.client.query(&copy("acknowledged", "bob")).bind(id(&a1)).execute().await.expect("old triage");
                store.client.query(&copy("new", "")).bind(id(&a2)).execute().await.expect("old re-delivery");
                assert_eq!(store.migrate().await.expect("migration 4"), vec![4]);
                let all = AlertQuery { descending: true, ..Default::default() };
                let page = store.query_alerts(&all).await.expect("list");
                assert_eq!(page.total, 3);
                let a1_row = page.items.iter().find(|r| r.id == id(&a1)).expect("a1 listed");
                assert_eq!(
                    (a1_row.state.status.as_str(), a1_row.state.owner.as_deref()),
                    ("acknowledged", Some("bob"))
                );
                let acked = AlertQuery { statuses: Some(vec!["acknowledged".into()]), ..all.clone() };
                let page = store.query_alerts(&acked).await.expect("acknowledged");
                assert_eq!((page.total, page.items.len()), (1, 1));
                let new = AlertQuery { statuses: Some(vec!["new".into()]), ..all.clone() };
                assert_eq!(store.query_alerts(&new).await.expect("new").total, 2);
                // Moved once: a later change stays, migrating again applies nothing.
                let closed = AlertState { status: "closed".into(), ..Default::default() };
                store.update_alert(&id(&a1), &closed).await.expect("close").expect("a1 exists");
                assert_eq!(store.migrate().await.expect("migrate again"), Vec::<u32>::new());
                let one = AlertQuery { id: Some(id(&a1)), ..all.clone() };
                let page = store.query_alerts(&one).await.expect("a1");
                assert_eq!(page.items[0].state.status, "closed");
                assert!(page.items[0].version >= 3, "version {}", page.items[0].version);
                let state_rows: u64 =
                    store.client.query("SELECT count() FROM alert_state").fetch_one().await.expect("state rows");
                assert_eq!(state_rows, 2, "the acknowledgement moved once, the close added");
            }
        })
        .await;
        if let Err(e) = store.drop_database().await {
            eprintln!("could not drop database {db}: {e}");
        }
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    #[test]
    fn iso_dates_invert_partition_days() {
        for id in ["19700101", "20000229", "20241231", "20261127", "21000301"] {
            let day = yyyymmdd_to_day(id).unwrap();
            assert_eq!(iso_date(day).replace('-', ""), id);
        }
    }

    #[test]
    fn alert_windows_grow_from_the_newest_hour_and_end_with_the_whole_range() {
        let now = soc_model::Timestamp::from_unix_micros(100 * 86_400_000_000);
        let q = AlertQuery { descending: true, ..Default::default() };
        let w = alert_windows(&q, now);
        assert_eq!(w.len(), 4);
        assert!(w[3].is_none());
        assert_eq!(w[0].as_ref().unwrap().params[1], Param::I64(now.unix_micros() - 3_600_000_000));
        // A range shorter than a window: the whole range at once.
        let since = soc_model::Timestamp::from_unix_micros(now.unix_micros() - 1_800_000_000);
        assert_eq!(alert_windows(&AlertQuery { since: Some(since), ..q.clone() }, now).len(), 1);
        // Oldest first needs a start; by severity, no windows.
        assert_eq!(alert_windows(&AlertQuery { descending: false, ..q.clone() }, now).len(), 1);
        let sev = AlertQuery { sort: alerts::AlertSort::Severity, ..q };
        assert_eq!(alert_windows(&sev, now).len(), 1);
    }

    #[test]
    fn event_windows_stop_before_the_range_start_and_oldest_first_counts_from_it() {
        const HOUR: i64 = 3_600_000_000;
        let now = soc_model::Timestamp::from_unix_micros(100 * 86_400_000_000);
        let at = |h: i64| Some(soc_model::Timestamp::from_unix_micros(now.unix_micros() + h * HOUR));
        // A week newest first: every window, then the whole range.
        let w = time_windows(&EVENT_WINDOW_HOURS, true, at(-168), None, now);
        assert_eq!(w.len(), EVENT_WINDOW_HOURS.len() + 1);
        // The last 24 h: 1 h and 6 h only (24 h is the range itself).
        let w = time_windows(&EVENT_WINDOW_HOURS, true, at(-24), None, now);
        assert_eq!(w.len(), 3);
        assert_eq!(w[1].as_ref().map(|x| x.params[1].clone()), Some(Param::I64(now.unix_micros() - 6 * HOUR)));
        // Before `until`, not now.
        let w = time_windows(&EVENT_WINDOW_HOURS, true, None, at(-48), now);
        assert_eq!(w[0].as_ref().map(|x| x.params[1].clone()), Some(Param::I64(now.unix_micros() - 49 * HOUR)));
        // Oldest first: upper bounds after `since`; none without it.
        let w = time_windows(&EVENT_WINDOW_HOURS, false, at(-168), None, now);
        assert_eq!(w[0].as_ref().map(|x| x.params[1].clone()), Some(Param::I64(now.unix_micros() - 167 * HOUR)));
        assert_eq!(time_windows(&EVENT_WINDOW_HOURS, false, None, None, now).len(), 1);
        // Windows under a quarter of the range: a day tries 1 h, a week up to 24 h, no start all.
        assert_eq!(event_window_hours(at(-24), None, now), vec![1]);
        assert_eq!(event_window_hours(at(-168), None, now), vec![1, 6, 24]);
        assert_eq!(event_window_hours(None, None, now), EVENT_WINDOW_HOURS.to_vec());
    }

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
