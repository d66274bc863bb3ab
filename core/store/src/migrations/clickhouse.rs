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
pub const CLICKHOUSE: &[Migration] = &[
    Migration {
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
    },
    Migration {
        version: 2,
        name: "incidents and forwarding",
        statements: &[
            // Versions of an incident collapse to the highest one (ReplacingMergeTree with a
            // version column); reads use FINAL so they see it before the merge.
            "CREATE TABLE IF NOT EXISTS incidents (
                incident_id   String,
                version       UInt64,
                updated_us    Int64,
                first_seen_us Int64,
                last_seen_us  Int64,
                severity      UInt8,
                status        String,
                owner         String,
                segments      Array(String),
                entities      Array(String),
                json          String
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY incident_id",
            // Every forwarding step (append-only audit), a re-insert collapses by id.
            "CREATE TABLE IF NOT EXISTS forwarding (
                id               String,
                ts               DateTime('UTC'),
                ts_us            Int64,
                incident_id      String,
                incident_version UInt64,
                state            String,
                json             String
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY (incident_id, ts_us, id)",
        ],
    },
];
