//! Where records rest: a [`Store`] trait with a ClickHouse implementation (production) and
//! an embedded SQLite one (the all-in-one default). Both apply versioned migrations at
//! start-up, insert in batches idempotently (a record written twice is stored once, by its
//! deterministic id), partition by UTC day and drop whole days for retention.
#![forbid(unsafe_code)]

use soc_model::{Event, Timestamp};

/// Store failures. `Unavailable` is transient: retry with backoff.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable at {addr}: {reason} (start it with deploy/clickhouse.sh start)")]
    Unavailable { addr: String, reason: String },
    #[error("migration {version} failed: {reason}")]
    Migration { version: u32, reason: String },
    #[error("query failed: {0}")]
    Query(String),
    #[error("record without id (call Event::ensure_id before inserting)")]
    MissingId,
    #[error("invalid query: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
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
    /// At most this many rows (the store caps it at [`MAX_LIMIT`]).
    pub limit: usize,
    /// Newest first when true (the default for analysts), oldest first otherwise.
    pub newest_first: bool,
}

/// Upper bound on rows one query returns.
pub const MAX_LIMIT: usize = 10_000;

/// Grouping for counts.
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
    /// Inserts a batch. Every event must have an id; an id already stored is not stored again.
    async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError>;
    /// Reads events matching `q`.
    async fn query_events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError>;
    /// Counts events matching `q` (ignores `limit`).
    async fn count_events(&self, q: &EventQuery) -> Result<u64, StoreError>;
    /// Counts events matching `q` per event type or per segment, largest first.
    async fn count_by(&self, by: CountBy, q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError>;
    /// Drops every UTC day strictly before `keep_from_day` (days since the epoch).
    async fn drop_days_before(&self, keep_from_day: i64) -> Result<RetentionReport, StoreError>;
    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Short name for logs and metrics (`clickhouse`, `sqlite`).
    fn name(&self) -> &'static str;
}
