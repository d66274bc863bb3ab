//! Where records rest: a [`Store`] trait with a ClickHouse implementation (production) and
//! an embedded SQLite one (the all-in-one default). Both apply versioned migrations at
//! start-up, insert in batches idempotently (a record written twice is stored once, by its
//! deterministic id), partition by UTC day and drop whole days for retention.
//!
//! - [`sqlite::SqliteStore`]: one file (or memory), no server; for the all-in-one install and tests.
//! - [`clickhouse::ClickHouseStore`] (feature `clickhouse`, on by default): the production store.
//! - [`conformance::run_all`]: the one behaviour suite both implementations must pass.
//! - [`migrations`]: the versioned schema of each backend.
//! - [`alerts`]: alert and detection records as rows of their own (one schema for every
//!   engine, triage state as versions of the row), queried with filters, order and paging.
//! - [`summary`]: the overview's statistics in a few grouped queries.
//! - [`observe::Observed`]: a store that reports each acknowledged batch (benchmarks, tests).
//!
//! Metrics (with the `metrics` crate): `soc_store_inserted_rows_total{store}` (rows accepted
//! in successful batches, duplicates included), `soc_store_insert_seconds{store}` (histogram,
//! per batch) and `soc_store_errors_total{store,op}`.
#![forbid(unsafe_code)]

use soc_model::{Event, Incident, Timestamp};
use std::collections::HashMap;

pub mod alerts;
#[cfg(feature = "clickhouse")]
pub mod clickhouse;
pub mod conformance;
pub mod incidents;
pub mod migrations;
pub mod observe;
pub mod search;
pub mod sqlite;
pub mod summary;

pub use crate::alerts::{AlertPage, AlertQuery, AlertRecord, AlertSort, AlertState, Suppression};
#[cfg(feature = "clickhouse")]
pub use crate::clickhouse::ClickHouseStore;
pub use crate::incidents::IncidentQuery;
pub use crate::sqlite::SqliteStore;
pub use crate::summary::{Summary, SummaryQuery};

/// Store failures. `Unavailable` and `Busy` are transient: retry with backoff.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server did not answer (connection refused, reset, timed out).
    #[error("store unavailable at {addr}: {reason} (start it with deploy/clickhouse.sh start)")]
    Unavailable { addr: String, reason: String },
    /// The embedded database is locked by another writer for longer than the busy timeout.
    #[error("store busy at {addr}: {reason}")]
    Busy { addr: String, reason: String },
    /// The embedded database file cannot be opened (path, permissions, not a database).
    #[error("cannot open store at {addr}: {reason}")]
    Open { addr: String, reason: String },
    /// A schema migration failed; the versions before it are applied and recorded.
    #[error("migration {version} failed: {reason}")]
    Migration { version: u32, reason: String },
    /// The database rejected a statement, or returned data that cannot be decoded.
    #[error("query failed: {0}")]
    Query(String),
    /// An event of the batch has no id.
    #[error("record without id (call Event::ensure_id before inserting)")]
    MissingId,
    /// The request itself is wrong (bad URL, bad name); retrying does not help.
    #[error("invalid query: {0}")]
    Invalid(String),
}

impl StoreError {
    /// True for failures that a retry with backoff can overcome.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. } | StoreError::Busy { .. })
    }
}

/// Filters for reading events. Time range is `[since, until)`; all filters are ANDed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    pub event_type: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only these segments (a data scope); `None` means all.
    pub segments: Option<Vec<String>>,
    pub sensor: Option<String>,
    pub host: Option<String>,
    /// Matches `src_ip` or `dest_ip`.
    pub ip: Option<String>,
    pub flow_id: Option<u64>,
    pub community_id: Option<String>,
    /// At most this many rows (the store caps it at [`MAX_LIMIT`]); `0` means [`MAX_LIMIT`].
    pub limit: usize,
    /// Newest first when true (the default for analysts), oldest first otherwise.
    pub newest_first: bool,
}

/// Upper bound on rows one query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Incident ids per query of [`Store::get_incidents`].
pub const INCIDENT_CHUNK: usize = 1_000;

impl EventQuery {
    /// The row limit a store applies: `limit` capped at [`MAX_LIMIT`], `0` meaning [`MAX_LIMIT`].
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 { MAX_LIMIT } else { self.limit.min(MAX_LIMIT) }
    }
}

/// Grouping for counts. Events without a segment are counted under `""`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountBy {
    EventType,
    Segment,
}

/// What retention removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// UTC days (days since the epoch) removed.
    pub days_dropped: Vec<i64>,
    pub rows_dropped: u64,
}

/// The store behind the correlator (writes) and the dashboard (reads).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations in order; returns the versions applied now.
    async fn migrate(&self) -> Result<Vec<u32>, StoreError>;
    /// Inserts a batch. Every event must have an id ([`StoreError::MissingId`] otherwise, and
    /// nothing of the batch is written); an id already stored is not stored again. Alert and
    /// detection records also become rows of the alerts table ([`alerts`]): a new id as
    /// version 1, a stored id as its next version (triage state kept) unless its `count` is
    /// lower than the stored one.
    async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError>;
    /// Reads events matching `q`, ordered by time (then id) as `q.newest_first` asks.
    async fn query_events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError>;
    /// Counts events matching `q` (ignores `limit`).
    async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError>;
    /// Counts events matching `q` per event type or per segment, largest first (ties by key,
    /// ascending). Events without a segment are counted under `""`.
    async fn count_by(&self, by: CountBy, q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError>;
    /// Drops every UTC day strictly before `keep_from_day` (days since the epoch).
    async fn drop_days_before(&self, keep_from_day: i64) -> Result<RetentionReport, StoreError>;
    /// Writes incident versions. Per `incident_id` the highest version wins; writing a
    /// version lower than (or equal to) the stored one changes nothing.
    async fn upsert_incidents(&self, incidents: &[Incident]) -> Result<(), StoreError>;
    /// The latest stored version of one incident.
    async fn get_incident(&self, incident_id: &str) -> Result<Option<Incident>, StoreError>;
    /// The latest stored versions of several incidents, by id; ids not stored are absent
    /// (duplicates in `ids` are read once). The stores read them in a few queries
    /// ([`INCIDENT_CHUNK`] ids each); the default asks [`Store::get_incident`] for each.
    async fn get_incidents(&self, ids: &[String]) -> Result<HashMap<String, Incident>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            if !out.contains_key(id)
                && let Some(inc) = self.get_incident(id).await?
            {
                out.insert(id.clone(), inc);
            }
        }
        Ok(out)
    }
    /// Incidents (latest versions) matching `q`, newest `last_seen` first.
    async fn query_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError>;
    /// Counts incidents matching `q` (ignores limit and offset).
    async fn count_incidents(&self, q: &IncidentQuery) -> Result<u64, StoreError>;
    /// Appends forwarding audit records (`forwarding` events with ids; idempotent by id).
    async fn insert_forwarding(&self, records: &[Event]) -> Result<(), StoreError>;
    /// Forwarding records, newest first; only those of `incident_id` when given.
    async fn query_forwarding(&self, incident_id: Option<&str>, limit: usize) -> Result<Vec<Event>, StoreError>;
    /// Analyst search over events ([`search`]): records, or counts grouped by a field.
    /// Stores without it answer [`StoreError::Invalid`].
    async fn search(&self, q: &search::SearchQuery) -> Result<search::SearchResult, StoreError> {
        let _ = q;
        Err(StoreError::Invalid(format!("the {} store does not support search", self.name())))
    }
    /// Alerts (highest versions) matching `q`: one page in `q`'s order, and how many match.
    /// Stores without an alerts table answer [`StoreError::Invalid`].
    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage, StoreError> {
        let _ = q;
        Err(StoreError::Invalid(format!("the {} store has no alerts table", self.name())))
    }
    /// Writes a triage change of alert `id` as its next version; the updated alert, or
    /// `None` when there is no such alert.
    async fn update_alert(&self, id: &str, state: &AlertState) -> Result<Option<AlertRecord>, StoreError> {
        let _ = (id, state);
        Err(StoreError::Invalid(format!("the {} store has no alerts table", self.name())))
    }
    /// The overview's statistics ([`summary`]) in a few grouped queries.
    async fn summary(&self, q: &SummaryQuery) -> Result<Summary, StoreError> {
        let _ = q;
        Err(StoreError::Invalid(format!("the {} store does not compute statistics", self.name())))
    }
    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Short name for logs and metrics (`clickhouse`, `sqlite`).
    fn name(&self) -> &'static str;
}

mod filter;

/// Checks that every event of a batch has a non-empty id, before anything is written.
pub(crate) fn require_ids(events: &[Event]) -> Result<(), StoreError> {
    if events.iter().all(|e| e.id.as_deref().is_some_and(|id| !id.is_empty())) {
        Ok(())
    } else {
        Err(StoreError::MissingId)
    }
}

/// Decodes an event read back from the store's `json` column.
pub(crate) fn decode_event(json: &str) -> Result<Event, StoreError> {
    Event::from_json(json.as_bytes()).map_err(|e| StoreError::Query(format!("stored event cannot be decoded: {e}")))
}

/// Metric helpers: one place for the names and labels.
pub(crate) mod telemetry {
    use crate::StoreError;

    /// Records a successful batch of `rows` that took `secs`.
    pub(crate) fn inserted(store: &'static str, rows: usize, secs: f64) {
        metrics::counter!("soc_store_inserted_rows_total", "store" => store).increment(rows as u64);
        metrics::histogram!("soc_store_insert_seconds", "store" => store).record(secs);
    }

    /// Counts a failed operation and passes the result through.
    pub(crate) fn track<T>(store: &'static str, op: &'static str, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &r {
            metrics::counter!("soc_store_errors_total", "store" => store, "op" => op).increment(1);
            tracing::debug!(store, op, error = %e, "store operation failed");
        }
        r
    }
}
