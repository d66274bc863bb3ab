//! Incidents (latest version per id) and forwarding records: the queries both backends share.
//!
//! An incident is stored as one row per `incident_id` holding its highest `version`
//! (SQLite: an upsert that only replaces a lower version; ClickHouse: a
//! `ReplacingMergeTree(version)` read with `FINAL`). Writing an older version than the one
//! stored changes nothing, so redelivered or reordered versions are harmless.
//!
//! Forwarding records (`EventType::Forwarding` events) are an append-only audit of every
//! send to the NCSC and its outcome; they are idempotent by event id.

use crate::filter::{Dialect, Param, Where};
use soc_model::{Event, Incident, IncidentStatus, Level, Timestamp};

/// Filters for reading incidents. All filters are ANDed; results are ordered by
/// `last_seen` (newest first), then id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncidentQuery {
    /// Only these statuses; `None`: any.
    pub status: Option<Vec<IncidentStatus>>,
    /// Only incidents at least this severe.
    pub min_severity: Option<Level>,
    /// Data scope: incidents with at least one of these segments; `None`: all.
    pub segments: Option<Vec<String>>,
    /// `last_seen` in `[since, until)`.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only incidents about this entity (`ip:10.0.0.4`, `host:dc01`, `user:alice`).
    pub entity: Option<String>,
    /// At most this many (capped at [`crate::MAX_LIMIT`]); `0` means the cap.
    pub limit: usize,
    /// Rows to skip (paging).
    pub offset: usize,
}

impl IncidentQuery {
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 { crate::MAX_LIMIT } else { self.limit.min(crate::MAX_LIMIT) }
    }
}

/// Severity as a sortable number (informational 0 .. critical 4: the enum's order).
pub(crate) fn level_rank(l: Level) -> u8 {
    l as u8
}

pub(crate) fn status_str(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::New => "new",
        IncidentStatus::Acknowledged => "acknowledged",
        IncidentStatus::Investigating => "investigating",
        IncidentStatus::Resolved => "resolved",
        IncidentStatus::FalsePositive => "false_positive",
    }
}

/// Separator of list columns in SQLite (`\x1fa\x1fb\x1f`): a character no segment, host or
/// user name contains, so `instr(col, sep || value || sep)` is an exact element test.
pub(crate) const SEP: char = '\u{1f}';

/// A list encoded for SQLite's list columns.
pub(crate) fn sqlite_list(items: &[String]) -> String {
    let mut s = String::from(SEP);
    for i in items {
        s.extend(i.chars().filter(|c| *c != SEP));
        s.push(SEP);
    }
    s
}

/// The `WHERE` clause of an incident query.
pub(crate) fn build(q: &IncidentQuery, dialect: Dialect) -> Where {
    let mut parts: Vec<String> = Vec::new();
    let mut params = Vec::new();
    if let Some(st) = &q.status {
        if st.is_empty() {
            parts.push("1 = 0".into());
        } else {
            parts.push(format!("status IN ({})", vec!["?"; st.len()].join(", ")));
            params.extend(st.iter().map(|s| Param::Str(status_str(*s).into())));
        }
    }
    if let Some(l) = q.min_severity {
        parts.push("severity >= ?".into());
        params.push(Param::U32(u32::from(level_rank(l))));
    }
    let has = |col: &str, value: String, parts: &mut Vec<String>, params: &mut Vec<Param>| match dialect {
        Dialect::Sqlite => {
            parts.push(format!("instr({col}, ?) > 0"));
            params.push(Param::Str(format!("{SEP}{value}{SEP}")));
        }
        Dialect::ClickHouse => {
            parts.push(format!("has({col}, ?)"));
            params.push(Param::Str(value));
        }
    };
    if let Some(segs) = &q.segments {
        if segs.is_empty() {
            parts.push("1 = 0".into());
        } else {
            let mut any = Vec::new();
            let mut p = Vec::new();
            for s in segs {
                has("segments", s.clone(), &mut any, &mut p);
            }
            parts.push(format!("({})", any.join(" OR ")));
            params.extend(p);
        }
    }
    if let Some(e) = &q.entity {
        has("entities", e.clone(), &mut parts, &mut params);
    }
    if let Some(s) = q.since {
        parts.push("last_seen_us >= ?".into());
        params.push(Param::I64(s.unix_micros()));
    }
    if let Some(u) = q.until {
        parts.push("last_seen_us < ?".into());
        params.push(Param::I64(u.unix_micros()));
    }
    Where { sql: if parts.is_empty() { "1 = 1".into() } else { parts.join(" AND ") }, params }
}

/// Incidents newest first.
pub(crate) const ORDER: &str = "last_seen_us DESC, incident_id ASC";

/// The sortable columns of one incident row.
pub(crate) struct IncidentColumns {
    pub incident_id: String,
    pub version: u64,
    pub updated_us: i64,
    pub first_seen_us: i64,
    pub last_seen_us: i64,
    pub severity: u8,
    pub status: &'static str,
    pub owner: String,
    pub segments: Vec<String>,
    pub entities: Vec<String>,
    pub json: String,
}

impl IncidentColumns {
    pub(crate) fn of(i: &Incident) -> Self {
        let us = |t: Option<Timestamp>| t.map(|t| t.unix_micros()).unwrap_or(0);
        IncidentColumns {
            incident_id: i.incident_id.clone(),
            version: i.version,
            updated_us: us(i.updated),
            first_seen_us: us(i.first_seen),
            last_seen_us: us(i.last_seen.or(i.first_seen)),
            severity: level_rank(i.severity),
            status: status_str(i.status),
            owner: i.owner.clone().unwrap_or_default(),
            segments: i.segments.clone(),
            entities: i.entities.clone(),
            json: serde_json::to_string(i).unwrap_or_default(),
        }
    }
}

/// The ids of a batch read, each once, in their first order.
pub(crate) fn distinct_ids(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
}

/// Decodes an incident read back from the store.
pub(crate) fn decode_incident(json: &str) -> Result<Incident, crate::StoreError> {
    serde_json::from_str(json).map_err(|e| crate::StoreError::Query(format!("stored incident cannot be decoded: {e}")))
}

/// Checks a batch of forwarding records: ids present and the payload there.
pub(crate) fn check_forwarding(records: &[Event]) -> Result<(), crate::StoreError> {
    crate::require_ids(records)?;
    if let Some(bad) = records.iter().find(|e| e.forwarding.is_none()) {
        return Err(crate::StoreError::Invalid(format!(
            "record {} of type {} has no forwarding payload",
            bad.id.as_deref().unwrap_or_default(),
            bad.event_type
        )));
    }
    Ok(())
}

/// Checks a batch of incidents: every one has an id.
pub(crate) fn check_incidents(incidents: &[Incident]) -> Result<(), crate::StoreError> {
    if incidents.iter().any(|i| i.incident_id.is_empty()) {
        return Err(crate::StoreError::Invalid("incident without incident_id".into()));
    }
    Ok(())
}
