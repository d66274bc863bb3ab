//! The `WHERE` clause of an [`EventQuery`], shared by both backends so that they filter
//! alike. Values are never spliced into the SQL: they become `?` placeholders with a
//! parameter each (SQLite binds them, ClickHouse's client escapes them with `.bind()`).

use crate::{CountBy, EventQuery};
use soc_model::Timestamp;

/// A bound value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Param {
    Str(String),
    I64(i64),
    U64(u64),
    U32(u32),
}

/// SQL dialect differences that matter for filtering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    ClickHouse,
}

/// A `WHERE` clause (`1 = 1` when nothing filters) and its parameters, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Where {
    pub sql: String,
    pub params: Vec<Param>,
}

/// Seconds since the epoch as a ClickHouse `DateTime` value (which is unsigned 32-bit).
pub(crate) fn clamp_secs(secs: i64) -> u32 {
    u32::try_from(secs.max(0)).unwrap_or(u32::MAX)
}

/// `[since, until)` over `ts_us`; on ClickHouse also over the second-granular `ts` (partition
/// and primary-key pruning; `ts_us < until` implies `ts <= floor(until in seconds)`).
pub(crate) fn push_range(
    parts: &mut Vec<String>,
    params: &mut Vec<Param>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    dialect: Dialect,
) {
    if let Some(since) = since {
        if dialect == Dialect::ClickHouse {
            parts.push("ts >= toDateTime(?)".into());
            params.push(Param::U32(clamp_secs(since.unix_secs())));
        }
        parts.push("ts_us >= ?".into());
        params.push(Param::I64(since.unix_micros()));
    }
    if let Some(until) = until {
        if dialect == Dialect::ClickHouse {
            parts.push("ts <= toDateTime(?)".into());
            params.push(Param::U32(clamp_secs(until.unix_secs())));
        }
        parts.push("ts_us < ?".into());
        params.push(Param::I64(until.unix_micros()));
    }
}

/// The data scope over `segment`: `None` sees all, an empty scope nothing.
pub(crate) fn push_scope(parts: &mut Vec<String>, params: &mut Vec<Param>, segments: Option<&[String]>) {
    match segments {
        None => {}
        Some([]) => parts.push("1 = 0".into()),
        Some(segs) => {
            parts.push(format!("segment IN ({})", vec!["?"; segs.len()].join(", ")));
            params.extend(segs.iter().cloned().map(Param::Str));
        }
    }
}

/// Builds the clause for `q` (everything except limit and ordering).
pub(crate) fn build(q: &EventQuery, dialect: Dialect) -> Where {
    let (mut coarse, fine) = build_split(q, dialect);
    coarse.params.extend(fine.params);
    let sql = match (coarse.sql.is_empty(), fine.sql.is_empty()) {
        (true, true) => "1 = 1".to_string(),
        (false, true) => coarse.sql,
        (true, false) => fine.sql,
        (false, false) => format!("{} AND {}", coarse.sql, fine.sql),
    };
    Where { sql, params: coarse.params }
}

/// The clause for `q` in two parts (each empty when nothing filters): the coarse conditions
/// the sorting key and partitions prune by (type, time range, scope), and the per-row ones
/// (sensor, host, addresses, flow), which ClickHouse evaluates first (`PREWHERE`) so that
/// the other columns are read only for the granules that match.
pub(crate) fn build_split(q: &EventQuery, dialect: Dialect) -> (Where, Where) {
    let mut parts: Vec<String> = Vec::new();
    let mut params = Vec::new();
    if let Some(t) = &q.event_type {
        parts.push("event_type = ?".into());
        params.push(Param::Str(t.clone()));
    }
    push_range(&mut parts, &mut params, q.since, q.until, dialect);
    push_scope(&mut parts, &mut params, q.segments.as_deref());
    let coarse = Where { sql: parts.join(" AND "), params };
    let mut parts: Vec<String> = Vec::new();
    let mut params = Vec::new();
    if let Some(s) = &q.sensor {
        parts.push("sensor = ?".into());
        params.push(Param::Str(s.clone()));
    }
    if let Some(h) = &q.host {
        parts.push("host = ?".into());
        params.push(Param::Str(h.clone()));
    }
    if let Some(ip) = &q.ip {
        parts.push("(src_ip = ? OR dest_ip = ?)".into());
        params.push(Param::Str(ip.clone()));
        params.push(Param::Str(ip.clone()));
    }
    if let Some(f) = q.flow_id {
        parts.push("flow_id = ?".into());
        params.push(match dialect {
            // SQLite integers are i64: flow ids are stored bit-cast.
            Dialect::Sqlite => Param::I64(f as i64),
            Dialect::ClickHouse => Param::U64(f),
        });
    }
    if let Some(c) = &q.community_id {
        parts.push("community_id = ?".into());
        params.push(Param::Str(c.clone()));
    }
    (coarse, Where { sql: parts.join(" AND "), params })
}

/// `ORDER BY` for event reads: by time, then id, so both backends return ties alike.
pub(crate) fn order_by(q: &EventQuery) -> &'static str {
    if q.newest_first { "ts_us DESC, id DESC" } else { "ts_us ASC, id ASC" }
}

/// The grouping expression of a count, as a non-null string.
pub(crate) fn group_key(by: CountBy, dialect: Dialect) -> &'static str {
    match (by, dialect) {
        (CountBy::EventType, _) => "event_type",
        (CountBy::Segment, Dialect::Sqlite) => "COALESCE(segment, '')",
        (CountBy::Segment, Dialect::ClickHouse) => "ifNull(segment, '')",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::Timestamp;

    #[test]
    fn empty_query_matches_everything_and_values_are_parameters() {
        let w = build(&EventQuery::default(), Dialect::Sqlite);
        assert_eq!(w.sql, "1 = 1");
        assert!(w.params.is_empty());
        let q = EventQuery {
            event_type: Some("dns' OR 1=1 --".into()),
            segments: Some(vec!["a".into(), "b".into()]),
            ip: Some("10.0.0.1".into()),
            flow_id: Some(u64::MAX),
            since: Some(Timestamp::from_unix_micros(1_500_000)),
            ..Default::default()
        };
        let w = build(&q, Dialect::Sqlite);
        assert!(!w.sql.contains("OR 1=1"), "{}", w.sql);
        assert_eq!(w.sql.matches('?').count(), w.params.len());
        assert!(w.params.contains(&Param::I64(-1)));
        let c = build(&q, Dialect::ClickHouse);
        assert_eq!(c.sql.matches('?').count(), c.params.len());
        assert!(c.params.contains(&Param::U32(1)));
        assert!(c.params.contains(&Param::U64(u64::MAX)));
    }

    #[test]
    fn empty_scope_sees_nothing() {
        let w = build(&EventQuery { segments: Some(vec![]), ..Default::default() }, Dialect::ClickHouse);
        assert_eq!(w.sql, "1 = 0");
    }

    #[test]
    fn datetime_seconds_are_clamped() {
        assert_eq!(clamp_secs(-5), 0);
        assert_eq!(clamp_secs(7), 7);
        assert_eq!(clamp_secs(i64::MAX), u32::MAX);
    }
}
