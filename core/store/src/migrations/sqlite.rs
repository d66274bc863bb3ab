//! SQLite schema. Each migration runs in one transaction together with its
//! `schema_migrations` row.

use super::Migration;

/// Creates the bookkeeping table; run before reading the applied versions.
pub(crate) const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL
)";

/// SQLite migrations, ascending.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "events",
        statements: &[
            // One row per event id. The columns are copies of envelope fields for filtering
            // and grouping; `json` is the whole event and the only thing read back.
            // `ts_us` is microseconds since the epoch (UTC), `day` = ts_us / 86400e6 (floor),
            // the retention unit. `flow_id` is the u64 bit-cast to INTEGER (i64).
            "CREATE TABLE IF NOT EXISTS events (
            id           TEXT PRIMARY KEY,
            ts_us        INTEGER NOT NULL,
            day          INTEGER NOT NULL,
            event_type   TEXT NOT NULL,
            sensor       TEXT,
            segment      TEXT,
            host         TEXT,
            src_ip       TEXT,
            src_port     INTEGER,
            dest_ip      TEXT,
            dest_port    INTEGER,
            proto        TEXT,
            flow_id      INTEGER,
            community_id TEXT,
            json         TEXT NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS events_day ON events (day)",
            "CREATE INDEX IF NOT EXISTS events_type_ts ON events (event_type, ts_us)",
            "CREATE INDEX IF NOT EXISTS events_segment_ts ON events (segment, ts_us)",
            "CREATE INDEX IF NOT EXISTS events_src_ip ON events (src_ip)",
            "CREATE INDEX IF NOT EXISTS events_dest_ip ON events (dest_ip)",
            "CREATE INDEX IF NOT EXISTS events_flow_id ON events (flow_id)",
            "CREATE INDEX IF NOT EXISTS events_community_id ON events (community_id)",
        ],
    },
    Migration {
        version: 2,
        name: "incidents and forwarding",
        statements: &[
            // One row per incident: its highest version (the upsert only replaces a lower
            // one). `segments`/`entities` are lists encoded as `\x1fa\x1fb\x1f`.
            "CREATE TABLE IF NOT EXISTS incidents (
                incident_id   TEXT PRIMARY KEY,
                version       INTEGER NOT NULL,
                updated_us    INTEGER NOT NULL,
                first_seen_us INTEGER NOT NULL,
                last_seen_us  INTEGER NOT NULL,
                severity      INTEGER NOT NULL,
                status        TEXT NOT NULL,
                owner         TEXT NOT NULL,
                segments      TEXT NOT NULL,
                entities      TEXT NOT NULL,
                json          TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS incidents_last_seen ON incidents (last_seen_us)",
            // Every forwarding step (append-only audit), idempotent by id.
            "CREATE TABLE IF NOT EXISTS forwarding (
                id               TEXT PRIMARY KEY,
                ts_us            INTEGER NOT NULL,
                incident_id      TEXT NOT NULL,
                incident_version INTEGER NOT NULL,
                state            TEXT NOT NULL,
                json             TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS forwarding_incident ON forwarding (incident_id, ts_us)",
            "CREATE INDEX IF NOT EXISTS forwarding_ts ON forwarding (ts_us)",
        ],
    },
    Migration {
        version: 3,
        name: "alerts",
        statements: &[
            // One row per alert or detection record: its highest version (see
            // `crate::alerts`). Lists are encoded as `\x1fa\x1fb\x1f`; `day` as in `events`.
            "CREATE TABLE IF NOT EXISTS alerts (
                id          TEXT PRIMARY KEY,
                ts_us       INTEGER NOT NULL,
                day         INTEGER NOT NULL,
                kind        TEXT NOT NULL,
                severity    INTEGER NOT NULL,
                rule_id     TEXT NOT NULL,
                rule_title  TEXT NOT NULL,
                category    TEXT NOT NULL,
                segment     TEXT NOT NULL,
                sensor      TEXT NOT NULL,
                src_ip      TEXT NOT NULL,
                dest_ip     TEXT NOT NULL,
                host        TEXT NOT NULL,
                user        TEXT NOT NULL,
                entities    TEXT NOT NULL,
                tags        TEXT NOT NULL,
                count       INTEGER NOT NULL,
                status      TEXT NOT NULL,
                owner       TEXT NOT NULL,
                verdict     TEXT NOT NULL,
                incident_id TEXT NOT NULL,
                version     INTEGER NOT NULL,
                json        TEXT NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts_us)",
            "CREATE INDEX IF NOT EXISTS alerts_segment_ts ON alerts (segment, ts_us)",
            "CREATE INDEX IF NOT EXISTS alerts_severity_ts ON alerts (severity, ts_us)",
            "CREATE INDEX IF NOT EXISTS alerts_day ON alerts (day)",
            // Statistics without the JSON: alert counts per bucket come from `alerts`,
            // event counts per type and segment from this index alone.
            "CREATE INDEX IF NOT EXISTS events_ts_type_segment ON events (ts_us, event_type, segment)",
        ],
    },
    Migration {
        version: 4,
        name: "alert status index",
        statements: &[
            // The triage state stays in the alert's row here (one writer, and a re-emission
            // updates only the alert's columns in the same statement, so it cannot undo a
            // triage change); status-filtered queues read this index.
            "CREATE INDEX IF NOT EXISTS alerts_status_ts ON alerts (status, ts_us)",
        ],
    },
];
