//! Alerts as first-class rows: one row per sensor `alert` and correlator `detection` record
//! (Suricata hits, Sigma detections, IOC hits), in one schema: rule, severity, MITRE tags,
//! entities (hosts, users, IPs), triage state.
//!
//! The store writes the row itself, inside [`crate::Store::insert_events`] (a projection of
//! the batch's alert-type events), so producers change nothing. The row's id is the event's
//! deterministic id. Each row has a `version`:
//!
//! - a new alert is written with version 1 and status `new`;
//! - the same id inserted again (a redelivered batch, or the correlator re-emitting a
//!   deduplicated alert with a higher `count`) becomes the next version and keeps the triage
//!   state of the stored one; a lower `count` than the stored one changes nothing;
//! - a triage change ([`crate::Store::update_alert`]) is the next version with the new state.
//!
//! Reads see the highest version of each id. SQLite keeps one row per id: a re-emission
//! updates the alert's columns and a triage change the state's, each in one statement, so
//! neither undoes the other. ClickHouse cannot update a row in place: alert rows are a
//! `ReplacingMergeTree(version)` read with `LIMIT 1 BY id`, and the triage state is kept
//! apart, in `alert_state` (one row per change, the highest version wins; migration 4 moved
//! the state stored before into it), so a re-emission written while an analyst acts cannot
//! bring back the state it read. An alert without a state row is `new`; the record's
//! `version` is the higher of its row's and its state's.
//!
//! Suppressions ("suppress similar": every alert of a rule in a segment, including later
//! ones) are rules held by the caller; a query passes them in [`AlertQuery::suppressions`]
//! and an alert still `new` that matches one reads as `suppressed`.

use crate::filter::{Dialect, Param, Where, clamp_secs};
use crate::incidents::level_rank;
use soc_model::{Event, EventType, Level, Timestamp};

/// Alert statuses (the store accepts only these).
pub const STATUSES: [&str; 4] = ["new", "acknowledged", "closed", "suppressed"];

/// Triage state of an alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertState {
    /// One of [`STATUSES`].
    pub status: String,
    /// The analyst it is assigned to.
    pub owner: Option<String>,
    /// Close verdict (`true_positive`, `false_positive`, `benign`).
    pub verdict: Option<String>,
    /// The incident it was escalated into.
    pub incident_id: Option<String>,
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState { status: "new".into(), owner: None, verdict: None, incident_id: None }
    }
}

/// One stored alert (its highest version).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRecord {
    /// The event's id.
    pub id: String,
    pub timestamp: Timestamp,
    /// `suricata` for sensor alerts; the detection engine (`sigma`, `ioc`, ...) otherwise.
    pub kind: String,
    pub severity: Level,
    pub rule_id: String,
    pub rule_title: String,
    pub category: Option<String>,
    pub segment: Option<String>,
    pub sensor: Option<String>,
    pub src_ip: Option<String>,
    pub dest_ip: Option<String>,
    pub host: Option<String>,
    pub user: Option<String>,
    /// `ip:...`, `host:...`, `user:...` (the incident entity format).
    pub entities: Vec<String>,
    /// MITRE ATT&CK and other tags (`attack.t1059`, ...).
    pub tags: Vec<String>,
    /// How many occurrences the alert stands for (deduplicated alerts carry `count`; 1 otherwise).
    pub count: u64,
    pub state: AlertState,
    pub version: u64,
    /// The alert or detection record as stored.
    pub event: Event,
}

fn opt(s: &str) -> Option<String> {
    if s.is_empty() { None } else { Some(s.to_string()) }
}

/// Severity from its stored rank (the order of [`Level`]).
pub(crate) fn level_of_rank(r: u8) -> Level {
    match r {
        0 => Level::Informational,
        1 => Level::Low,
        2 => Level::Medium,
        3 => Level::High,
        _ => Level::Critical,
    }
}

fn count_of(v: Option<&serde_json::Value>) -> Option<u64> {
    v.and_then(|v| v.as_u64()).filter(|n| *n > 0)
}

fn str_of(v: Option<&serde_json::Value>) -> Option<String> {
    v.and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// MITRE tags of a Suricata alert's metadata (`mitre_technique_id: ["T1059"]` ->
/// `attack.t1059`, the Sigma spelling), so both engines' tags compare alike.
fn suricata_tags(meta: Option<&serde_json::Map<String, serde_json::Value>>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(meta) = meta else { return out };
    for key in ["mitre_tactic_id", "mitre_technique_id"] {
        let vals: Vec<&serde_json::Value> = match meta.get(key) {
            Some(serde_json::Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => continue,
        };
        for v in vals.into_iter().filter_map(|v| v.as_str()) {
            let t = format!("attack.{}", v.to_ascii_lowercase());
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

impl AlertRecord {
    /// The alert row of a record: `alert` records with an alert payload and `detection`
    /// records with a detection payload; `None` for anything else or without an id.
    pub fn project(e: &Event) -> Option<AlertRecord> {
        let id = e.id.clone().filter(|s| !s.is_empty())?;
        let (kind, rule_id, rule_title, severity, category, tags, count, user) = match e.event_type {
            EventType::Alert => {
                let a = e.alert.as_ref()?;
                (
                    "suricata".to_string(),
                    a.signature_id.map(|s| s.to_string()).unwrap_or_default(),
                    a.signature.clone().unwrap_or_default(),
                    Level::from_suricata_severity(a.severity.unwrap_or(3)),
                    a.category.clone(),
                    suricata_tags(a.metadata.as_ref()),
                    count_of(a.extra.get("count")),
                    None,
                )
            }
            EventType::Detection => {
                let d = e.detection.as_ref()?;
                (
                    d.engine.clone(),
                    d.rule_id.clone(),
                    d.rule_title.clone(),
                    d.level,
                    d.logsource.as_ref().and_then(|l| l.category.clone()),
                    d.tags.clone(),
                    count_of(d.extra.get("count")),
                    str_of(d.extra.get("user")),
                )
            }
            _ => return None,
        };
        let count = count.or_else(|| count_of(e.extra.get("count"))).unwrap_or(1);
        let user = str_of(e.extra.get("user")).or(user);
        let mut entities = Vec::new();
        for ip in [&e.src_ip, &e.dest_ip].into_iter().flatten() {
            let v = format!("ip:{ip}");
            if !entities.contains(&v) {
                entities.push(v);
            }
        }
        if let Some(h) = &e.host {
            entities.push(format!("host:{h}"));
        }
        if let Some(u) = &user {
            entities.push(format!("user:{}", u.to_ascii_lowercase()));
        }
        Some(AlertRecord {
            id,
            timestamp: e.timestamp,
            kind,
            severity,
            rule_id,
            rule_title,
            category,
            segment: e.segment.clone(),
            sensor: e.sensor.clone(),
            src_ip: e.src_ip.clone(),
            dest_ip: e.dest_ip.clone(),
            host: e.host.clone(),
            user,
            entities,
            tags,
            count,
            state: AlertState::default(),
            version: 1,
            event: e.clone(),
        })
    }

    /// The flat columns of the row, for both backends (`None`s as empty strings).
    pub(crate) fn columns(&self) -> AlertColumns {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        AlertColumns {
            id: self.id.clone(),
            ts: clamp_secs(self.timestamp.unix_secs()),
            ts_us: self.timestamp.unix_micros(),
            kind: self.kind.clone(),
            severity: level_rank(self.severity),
            rule_id: self.rule_id.clone(),
            rule_title: self.rule_title.clone(),
            category: s(&self.category),
            segment: s(&self.segment),
            sensor: s(&self.sensor),
            src_ip: s(&self.src_ip),
            dest_ip: s(&self.dest_ip),
            host: s(&self.host),
            user: s(&self.user),
            entities: self.entities.clone(),
            tags: self.tags.clone(),
            count: self.count,
            status: self.state.status.clone(),
            owner: s(&self.state.owner),
            verdict: s(&self.state.verdict),
            incident_id: s(&self.state.incident_id),
            version: self.version,
            json: String::from_utf8(self.event.to_json()).unwrap_or_default(),
        }
    }
}

/// The columns of one alert row (strings never null: empty means absent); field order =
/// column order of both stores (`ALERT_COLUMNS`), and ClickHouse's row type.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
#[cfg_attr(feature = "clickhouse", clickhouse(crate = "::clickhouse"))]
pub(crate) struct AlertColumns {
    pub id: String,
    pub ts: u32,
    pub ts_us: i64,
    pub kind: String,
    pub severity: u8,
    pub rule_id: String,
    pub rule_title: String,
    pub category: String,
    pub segment: String,
    pub sensor: String,
    pub src_ip: String,
    pub dest_ip: String,
    pub host: String,
    pub user: String,
    pub entities: Vec<String>,
    pub tags: Vec<String>,
    pub count: u64,
    pub status: String,
    pub owner: String,
    pub verdict: String,
    pub incident_id: String,
    pub version: u64,
    pub json: String,
}

impl AlertColumns {
    pub(crate) fn into_record(self) -> Result<AlertRecord, crate::StoreError> {
        let event = crate::decode_event(&self.json)?;
        Ok(AlertRecord {
            id: self.id,
            timestamp: Timestamp::from_unix_micros(self.ts_us),
            kind: self.kind,
            severity: level_of_rank(self.severity),
            rule_id: self.rule_id,
            rule_title: self.rule_title,
            category: opt(&self.category),
            segment: opt(&self.segment),
            sensor: opt(&self.sensor),
            src_ip: opt(&self.src_ip),
            dest_ip: opt(&self.dest_ip),
            host: opt(&self.host),
            user: opt(&self.user),
            entities: self.entities,
            tags: self.tags,
            count: self.count,
            state: AlertState {
                status: self.status,
                owner: opt(&self.owner),
                verdict: opt(&self.verdict),
                incident_id: opt(&self.incident_id),
            },
            version: self.version,
            event,
        })
    }
}

/// The alert rows of a batch, one per id: the last occurrence wins unless an earlier one
/// has a higher `count` (a re-emitted alert only grows).
pub(crate) fn project_batch(events: &[Event]) -> Vec<AlertRecord> {
    let mut out: Vec<AlertRecord> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for r in events.iter().filter_map(AlertRecord::project) {
        match at.get(&r.id) {
            Some(&i) => {
                if r.count >= out[i].count {
                    out[i] = r;
                }
            }
            None => {
                at.insert(r.id.clone(), out.len());
                out.push(r);
            }
        }
    }
    out
}

/// What a re-inserted alert becomes given the stored version (`None`: keep the stored row).
pub(crate) fn next_version(mut new: AlertRecord, stored: Option<(u64, u64, AlertState)>) -> Option<AlertRecord> {
    match stored {
        None => Some(new),
        Some((version, count, state)) => {
            if new.count < count {
                return None;
            }
            new.version = version + 1;
            new.state = state;
            Some(new)
        }
    }
}

/// A "suppress similar" rule: alerts of this kind and rule in this segment (`""`: none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub kind: String,
    pub rule_id: String,
    pub segment: String,
}

/// Sort order of an alert list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertSort {
    /// By time, then id.
    #[default]
    Time,
    /// By severity, then time, then id.
    Severity,
}

/// Filters, order and page of an alert list. All filters are ANDed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertQuery {
    /// Time range `[since, until)`.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Data scope: only these segments (`None`: all; empty: nothing).
    pub segments: Option<Vec<String>>,
    pub sensor: Option<String>,
    /// Source or destination address.
    pub ip: Option<String>,
    /// Only these severities.
    pub severities: Option<Vec<Level>>,
    /// Rule id (exact) or part of the rule title (case-insensitive).
    pub rule: Option<String>,
    /// Only these statuses (after suppressions apply).
    pub statuses: Option<Vec<String>>,
    /// Only this alert id.
    pub id: Option<String>,
    pub suppressions: Vec<Suppression>,
    pub sort: AlertSort,
    /// Largest first when true.
    pub descending: bool,
    pub offset: usize,
    /// At most this many (capped at [`crate::MAX_LIMIT`]); `0` means the cap.
    pub limit: usize,
}

impl AlertQuery {
    pub fn effective_limit(&self) -> usize {
        if self.limit == 0 { crate::MAX_LIMIT } else { self.limit.min(crate::MAX_LIMIT) }
    }

    /// The status an analyst sees: a `new` alert matching a suppression is `suppressed`.
    pub fn effective_status(&self, r: &AlertRecord) -> String {
        let seg = r.segment.as_deref().unwrap_or("");
        if r.state.status == "new"
            && self.suppressions.iter().any(|s| s.kind == r.kind && s.rule_id == r.rule_id && s.segment == seg)
        {
            "suppressed".into()
        } else {
            r.state.status.clone()
        }
    }
}

/// A page of alerts and how many match in all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertPage {
    pub total: u64,
    pub items: Vec<AlertRecord>,
}

/// The clause over columns that never change between versions of a row.
pub(crate) fn build_fixed(q: &AlertQuery, dialect: Dialect) -> Where {
    let mut parts: Vec<String> = Vec::new();
    let mut params = Vec::new();
    crate::filter::push_range(&mut parts, &mut params, q.since, q.until, dialect);
    crate::filter::push_scope(&mut parts, &mut params, q.segments.as_deref());
    if let Some(id) = &q.id {
        parts.push("id = ?".into());
        params.push(Param::Str(id.clone()));
    }
    if let Some(s) = &q.sensor {
        parts.push("sensor = ?".into());
        params.push(Param::Str(s.clone()));
    }
    if let Some(ip) = &q.ip {
        parts.push("(src_ip = ? OR dest_ip = ?)".into());
        params.push(Param::Str(ip.clone()));
        params.push(Param::Str(ip.clone()));
    }
    if let Some(levels) = &q.severities {
        if levels.is_empty() {
            parts.push("1 = 0".into());
        } else {
            parts.push(format!("severity IN ({})", vec!["?"; levels.len()].join(", ")));
            params.extend(levels.iter().map(|l| Param::U32(u32::from(level_rank(*l)))));
        }
    }
    if let Some(r) = q.rule.as_ref().filter(|r| !r.is_empty()) {
        parts.push(match dialect {
            Dialect::Sqlite => "(rule_id = ? OR instr(lower(rule_title), lower(?)) > 0)".into(),
            Dialect::ClickHouse => "(rule_id = ? OR positionCaseInsensitiveUTF8(rule_title, ?) > 0)".into(),
        });
        params.push(Param::Str(r.clone()));
        params.push(Param::Str(r.clone()));
    }
    Where { sql: if parts.is_empty() { "1 = 1".into() } else { parts.join(" AND ") }, params }
}

/// The effective status as an SQL expression over the column `status` (the stored status),
/// `kind`, `rule_id` and `segment`.
pub(crate) fn status_expr(q: &AlertQuery, dialect: Dialect, status: &str, params: &mut Vec<Param>) -> String {
    if q.suppressions.is_empty() {
        return status.into();
    }
    let mut any = Vec::new();
    for s in &q.suppressions {
        any.push("(kind = ? AND rule_id = ? AND segment = ?)");
        params.push(Param::Str(s.kind.clone()));
        params.push(Param::Str(s.rule_id.clone()));
        params.push(Param::Str(s.segment.clone()));
    }
    let cond = any.join(" OR ");
    match dialect {
        Dialect::Sqlite => format!("(CASE WHEN {status} = 'new' AND ({cond}) THEN 'suppressed' ELSE {status} END)"),
        Dialect::ClickHouse => format!("if({status} = 'new' AND ({cond}), 'suppressed', {status})"),
    }
}

/// `status IN (...)` over the effective status (the stored one in column `status`), or
/// `None` without a status filter.
pub(crate) fn build_state(q: &AlertQuery, dialect: Dialect, status: &str) -> Option<Where> {
    let statuses = q.statuses.as_ref()?;
    if statuses.is_empty() {
        return Some(Where { sql: "1 = 0".into(), params: Vec::new() });
    }
    let mut params = Vec::new();
    let e = status_expr(q, dialect, status, &mut params);
    params.extend(statuses.iter().cloned().map(Param::Str));
    Some(Where { sql: format!("{e} IN ({})", vec!["?"; statuses.len()].join(", ")), params })
}

/// `ORDER BY` of an alert list.
pub(crate) fn order_by(q: &AlertQuery) -> &'static str {
    match (q.sort, q.descending) {
        (AlertSort::Time, true) => "ts_us DESC, id DESC",
        (AlertSort::Time, false) => "ts_us ASC, id ASC",
        (AlertSort::Severity, true) => "severity DESC, ts_us DESC, id DESC",
        (AlertSort::Severity, false) => "severity ASC, ts_us ASC, id ASC",
    }
}

/// Sorts records like [`order_by`] (phase-two reads come back unordered).
pub(crate) fn sort_records(q: &AlertQuery, v: &mut [AlertRecord]) {
    v.sort_by(|a, b| {
        let o = match q.sort {
            AlertSort::Time => a.timestamp.cmp(&b.timestamp),
            AlertSort::Severity => a.severity.cmp(&b.severity).then(a.timestamp.cmp(&b.timestamp)),
        }
        .then_with(|| a.id.cmp(&b.id));
        if q.descending { o.reverse() } else { o }
    });
}

/// Checks a triage change before it is written.
pub(crate) fn check_state(s: &AlertState) -> Result<(), crate::StoreError> {
    if STATUSES.contains(&s.status.as_str()) {
        Ok(())
    } else {
        Err(crate::StoreError::Invalid(format!("alert status {:?} is not one of {STATUSES:?}", s.status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: serde_json::Value) -> Event {
        let mut e = Event::from_json(v.to_string().as_bytes()).unwrap();
        e.ensure_id();
        e
    }

    #[test]
    fn suricata_alerts_and_detections_share_one_schema() {
        let a = ev(json!({"timestamp": "2024-03-10T00:00:00.000001+0000", "event_type": "alert",
            "src_ip": "10.0.0.1", "dest_ip": "10.0.0.2", "segment": "cpnet", "host": "gw",
            "alert": {"signature_id": 2001, "signature": "ET X", "severity": 1,
                      "metadata": {"mitre_technique_id": ["T1059"]}}}));
        let r = AlertRecord::project(&a).unwrap();
        assert_eq!((r.kind.as_str(), r.rule_id.as_str(), r.severity), ("suricata", "2001", Level::High));
        assert_eq!(r.entities, vec!["ip:10.0.0.1", "ip:10.0.0.2", "host:gw"]);
        assert_eq!(r.tags, vec!["attack.t1059"]);
        assert_eq!((r.count, r.version, r.state.status.as_str()), (1, 1, "new"));
        let d = ev(json!({"timestamp": "2024-03-10T00:00:00.000001+0000", "event_type": "detection",
            "user": "Alice", "detection": {"engine": "sigma", "rule_id": "r1", "rule_title": "T",
            "level": "critical", "tags": ["attack.t1003"], "count": 7}}));
        let r = AlertRecord::project(&d).unwrap();
        assert_eq!((r.kind.as_str(), r.severity, r.count), ("sigma", Level::Critical, 7));
        assert_eq!(r.entities, vec!["user:alice"]);
        let c = r.columns();
        assert_eq!(c.clone().into_record().unwrap(), r);
        let flow = ev(json!({"timestamp": "2024-03-10T00:00:00.000001+0000", "event_type": "flow"}));
        assert!(AlertRecord::project(&flow).is_none());
    }

    #[test]
    fn reinserted_alerts_keep_state_and_only_grow() {
        let d = ev(json!({"timestamp": "2024-03-10T00:00:00+0000", "event_type": "detection",
            "detection": {"engine": "sigma", "rule_id": "r1", "rule_title": "T", "count": 3}}));
        let r = AlertRecord::project(&d).unwrap();
        let st = AlertState { status: "closed".into(), ..Default::default() };
        let n = next_version(r.clone(), Some((4, 2, st.clone()))).unwrap();
        assert_eq!((n.version, n.state), (5, st.clone()));
        assert!(next_version(r.clone(), Some((4, 9, st))).is_none());
        let mut lower = d.clone();
        if let Some(det) = lower.detection.as_mut() {
            det.extra.insert("count".into(), json!(1));
        }
        let batch = project_batch(&[d.clone(), lower]);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].count, 3);
    }

    #[test]
    fn filters_are_parameters_and_suppressions_change_the_status() {
        let q = AlertQuery {
            rule: Some("x' OR 1=1".into()),
            statuses: Some(vec!["suppressed".into()]),
            suppressions: vec![Suppression { kind: "sigma".into(), rule_id: "r".into(), segment: "".into() }],
            severities: Some(vec![Level::High]),
            ..Default::default()
        };
        for d in [Dialect::Sqlite, Dialect::ClickHouse] {
            let w = build_fixed(&q, d);
            assert!(!w.sql.contains("1=1"));
            assert_eq!(w.sql.matches('?').count(), w.params.len());
            let s = build_state(&q, d, "status").unwrap();
            assert_eq!(s.sql.matches('?').count(), s.params.len());
        }
    }
}
