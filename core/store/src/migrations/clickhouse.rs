//! ClickHouse schema, written for 18.16 (the oldest server supported; CI runs it) and valid
//! on current servers. Statements run in the store's database (the client sets it).
//!
//! 18.16 constraints honoured here: no LowCardinality (needs a setting), no CODEC, no TTL,
//! no data-skipping indexes, Nullable only outside the sorting key.

use super::Migration;

/// Creates the bookkeeping table; run before reading the applied versions.
/// ReplacingMergeTree: if two processes migrate at once, a version recorded twice still
/// reads back once (`SELECT DISTINCT`).
pub(crate) const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree ORDER BY version";

/// ClickHouse migrations, ascending.
pub const CLICKHOUSE: &[Migration] = &[Migration {
    version: 1,
    name: "events",
    statements: &[
        // One partition per UTC day (retention drops whole partitions). ReplacingMergeTree
        // on a key that ends with the deterministic id: a re-inserted event collapses into
        // one row at merge time, and queries read with FINAL so it counts once before that.
        // `ts` (seconds, for partitioning and pruning) and `ts_us` (exact, for filtering and
        // ordering) hold the same instant.
        "CREATE TABLE IF NOT EXISTS events (
            id           String,
            ts           DateTime('UTC'),
            ts_us        Int64,
            event_type   String,
            sensor       Nullable(String),
            segment      Nullable(String),
            host         Nullable(String),
            src_ip       Nullable(String),
            src_port     Nullable(UInt16),
            dest_ip      Nullable(String),
            dest_port    Nullable(UInt16),
            proto        Nullable(String),
            flow_id      Nullable(UInt64),
            community_id Nullable(String),
            json         String
        ) ENGINE = ReplacingMergeTree
        PARTITION BY toYYYYMMDD(ts)
        ORDER BY (event_type, ts, id)",
    ],
}];
