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

// The talkers views (records per source address) exist per time bucket: hourly (migration 3)
// and daily (migration 4). Each is defined once here, by its source table, and expands to
// the exact statement text those migrations shipped with (`shipped_statements_are_unchanged`
// below checks it): a database records only the version numbers it applied, and a fresh
// one must get the same views as one migrated when the version shipped.

/// `{table}_mv` into `{table}`: the non-alert records with a source address per `$bucket`
/// (an expression of `ts`, named `$unit`), segment and address.
macro_rules! event_talkers_view {
    ($table:literal, $bucket:literal, $unit:literal) => {
        concat!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS ",
            $table,
            "_mv TO ",
            $table,
            " AS
            SELECT ",
            $bucket,
            " AS ",
            $unit,
            ", ifNull(segment, '') AS seg, assumeNotNull(src_ip) AS ip, count() AS c
            FROM events WHERE isNotNull(src_ip) AND src_ip != '' AND event_type NOT IN ('alert', 'detection')
            GROUP BY ",
            $unit,
            ", seg, ip"
        )
    };
}

/// The alerts' counterpart of [`event_talkers_view`]: view `$view` into `$table` counts the
/// first version of each alert with a source address.
macro_rules! alert_talkers_view {
    ($view:literal, $table:literal, $bucket:literal, $unit:literal) => {
        concat!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS ",
            $view,
            " TO ",
            $table,
            " AS
            SELECT ",
            $bucket,
            " AS ",
            $unit,
            ", segment AS seg, src_ip AS ip, count() AS c
            FROM alerts WHERE version = 1 AND src_ip != '' GROUP BY ",
            $unit,
            ", seg, ip"
        )
    };
}

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
    Migration {
        version: 3,
        name: "alerts",
        statements: &[
            // One row per alert or detection record (the store projects them from the events
            // of each batch), in one schema whatever the engine. Triage changes and re-emitted
            // (deduplicated) alerts are new versions of the row: ReplacingMergeTree(version)
            // keeps the highest one; reads take it with `LIMIT 1 BY id` or argMax, not FINAL.
            // Strings are never NULL (empty = absent) so `segment` can lead the sorting key:
            // "newest first within a time range and segment" reads a key range. `severity` is
            // the level's rank (informational 0 .. critical 4).
            "CREATE TABLE IF NOT EXISTS alerts (
                id          String,
                ts          DateTime('UTC'),
                ts_us       Int64,
                kind        String,
                severity    UInt8,
                rule_id     String,
                rule_title  String,
                category    String,
                segment     String,
                sensor      String,
                src_ip      String,
                dest_ip     String,
                host        String,
                user        String,
                entities    Array(String),
                tags        Array(String),
                count       UInt64,
                status      String,
                owner       String,
                verdict     String,
                incident_id String,
                version     UInt64,
                json        String
            ) ENGINE = ReplacingMergeTree(version)
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (segment, ts, id)",
            // The GeoIP enrichment of records (country and ASN of the source and destination
            // addresses), one row per record that has any: the statistics' country and ASN
            // charts read these narrow columns instead of every record's JSON.
            "CREATE TABLE IF NOT EXISTS event_geo (
                id           String,
                ts           DateTime('UTC'),
                ts_us        Int64,
                segment      String,
                src_country  String,
                dest_country String,
                src_asn      String,
                dest_asn     String
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (segment, ts, id)",
            // Hourly counts for the statistics (SummingMergeTree, filled by materialized views
            // at insert): records per type and segment, first versions of alerts per rule,
            // records per source address, GeoIP countries and ASNs (both directions). A
            // statistics range reads whole hours here and its partial edge hours from the
            // raw tables. Alerts and detections are counted from the first version of their
            // row in `alerts`, so an alert re-emitted with a growing count (dedup) or delivered
            // again counts once; other records delivered twice count twice here.
            "CREATE TABLE IF NOT EXISTS stats_events_hourly (
                hour       DateTime('UTC'),
                event_type String,
                seg        String,
                c          UInt64
            ) ENGINE = SummingMergeTree(c)
            PARTITION BY toYYYYMMDD(hour)
            ORDER BY (hour, event_type, seg)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS stats_events_hourly_mv TO stats_events_hourly AS
            SELECT toStartOfHour(ts) AS hour, event_type, ifNull(segment, '') AS seg, count() AS c
            FROM events WHERE event_type NOT IN ('alert', 'detection') GROUP BY hour, event_type, seg",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS stats_alerts_hourly_mv TO stats_events_hourly AS
            SELECT toStartOfHour(ts) AS hour, if(kind = 'suricata', 'alert', 'detection') AS event_type,
                segment AS seg, count() AS c
            FROM alerts WHERE version = 1 GROUP BY hour, event_type, seg",
            "CREATE TABLE IF NOT EXISTS stats_rules_hourly (
                hour       DateTime('UTC'),
                seg        String,
                rule_title String,
                c          UInt64
            ) ENGINE = SummingMergeTree(c)
            PARTITION BY toYYYYMMDD(hour)
            ORDER BY (hour, seg, rule_title)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS stats_rules_hourly_mv TO stats_rules_hourly AS
            SELECT toStartOfHour(ts) AS hour, segment AS seg, rule_title, count() AS c
            FROM alerts WHERE version = 1 GROUP BY hour, seg, rule_title",
            "CREATE TABLE IF NOT EXISTS stats_talkers_hourly (
                hour DateTime('UTC'),
                seg  String,
                ip   String,
                c    UInt64
            ) ENGINE = SummingMergeTree(c)
            PARTITION BY toYYYYMMDD(hour)
            ORDER BY (hour, seg, ip)",
            event_talkers_view!("stats_talkers_hourly", "toStartOfHour(ts)", "hour"),
            alert_talkers_view!("stats_alert_talkers_hourly_mv", "stats_talkers_hourly", "toStartOfHour(ts)", "hour"),
            "CREATE TABLE IF NOT EXISTS stats_geo_hourly (
                hour  DateTime('UTC'),
                seg   String,
                field String,
                key   String,
                c     UInt64
            ) ENGINE = SummingMergeTree(c)
            PARTITION BY toYYYYMMDD(hour)
            ORDER BY (hour, seg, field, key)",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS stats_geo_hourly_mv TO stats_geo_hourly AS
            SELECT toStartOfHour(ts) AS hour, segment AS seg, tupleElement(g, 1) AS field, tupleElement(g, 2) AS key,
                count() AS c
            FROM event_geo
            ARRAY JOIN [('country', src_country), ('country', dest_country), ('asn', src_asn), ('asn', dest_asn)] AS g
            WHERE tupleElement(g, 2) != '' GROUP BY hour, seg, field, key",
        ],
    },
    Migration {
        version: 4,
        name: "alert triage state, daily talkers",
        statements: &[
            // Triage state apart from the alert rows: one row per change (status, owner,
            // verdict, incident), the highest `version` of an id wins. A re-emitted alert (a
            // new version of its `alerts` row) never touches it, so a triage change cannot be
            // overwritten by a concurrent re-emission. An alert without a row here is `new`.
            // The alert's filter columns are copied (they never change), so status filters and
            // their counts are answered from this small table without reading `alerts`.
            // Partitioned by the alert's day, like `alerts`, for retention.
            "CREATE TABLE IF NOT EXISTS alert_state (
                id          String,
                ts          DateTime('UTC'),
                ts_us       Int64,
                kind        String,
                severity    UInt8,
                rule_id     String,
                rule_title  String,
                segment     String,
                sensor      String,
                src_ip      String,
                dest_ip     String,
                status      String,
                owner       String,
                verdict     String,
                incident_id String,
                version     UInt64
            ) ENGINE = ReplacingMergeTree(version)
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (segment, ts, id)",
            // Daily talkers, segment first: a week's top talkers (in one segment or all) read
            // a few rows per address and day instead of one per hour. 18.16 does not run a
            // view on the rows another view inserts, so these views read the source tables.
            "CREATE TABLE IF NOT EXISTS stats_talkers_daily (
                day Date,
                seg String,
                ip  String,
                c   UInt64
            ) ENGINE = SummingMergeTree(c)
            PARTITION BY toYYYYMMDD(day)
            ORDER BY (seg, day, ip)",
            event_talkers_view!("stats_talkers_daily", "toDate(ts)", "day"),
            alert_talkers_view!("stats_alert_talkers_daily_mv", "stats_talkers_daily", "toDate(ts)", "day"),
            // Both tables are then filled from the stored data by the store (triage state of
            // the alert rows moved over once, daily talkers summed from the hourly ones):
            // `ClickHouseStore::fill_migration_4`.
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a, 64 bits: a fingerprint that does not depend on the toolchain.
    fn fnv(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    }

    /// Migrations that shipped are never edited (a database that applied one does not run it
    /// again): the statements of versions 1 to 4, byte for byte, as they shipped.
    #[test]
    fn shipped_statements_are_unchanged() {
        let shipped: [(u32, &[u64]); 4] = [
            (1, &[0x85450e41c150f4a4]),
            (2, &[0x8a9a349cf66b29dd, 0xa79f5afc3e68a2bd]),
            (
                3,
                &[
                    0x61ec49380ab54f6f,
                    0x84cc7f28b1639fab,
                    0x9484dff6665a920e,
                    0xa18a8c2b28494948,
                    0x59c18291f3c3ba4e,
                    0xfad8f41f764f0d8c,
                    0xeda046c1d5855666,
                    0x60b68ae296ae9c07,
                    0x7b0a151b718c8c84,
                    0xb90ae69d9c112aac,
                    0x4a87b54e17f064f5,
                    0x4e4818c38a5e761a,
                ],
            ),
            (4, &[0x98bd9ee2de3fde26, 0xd72a6013778e356b, 0x61ea6903dd326263, 0x6fb5c62c6d60080b]),
        ];
        for (version, want) in shipped {
            let Some(m) = CLICKHOUSE.iter().find(|m| m.version == version) else {
                panic!("migration {version} is gone");
            };
            let got: Vec<u64> = m.statements.iter().map(|s| fnv(s)).collect();
            assert_eq!(got, want, "migration {version} ({}) changed", m.name);
        }
    }

    #[test]
    fn talkers_views_expand_to_their_statements() {
        assert_eq!(
            alert_talkers_view!("stats_alert_talkers_daily_mv", "stats_talkers_daily", "toDate(ts)", "day"),
            "CREATE MATERIALIZED VIEW IF NOT EXISTS stats_alert_talkers_daily_mv TO stats_talkers_daily AS
            SELECT toDate(ts) AS day, segment AS seg, src_ip AS ip, count() AS c
            FROM alerts WHERE version = 1 AND src_ip != '' GROUP BY day, seg, ip"
        );
    }
}
