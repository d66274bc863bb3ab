//! Sigma correlation rules (Sigma 2.1 `correlation:` documents): `event_count`,
//! `value_count`, `temporal` and `temporal_ordered`, with `group-by`, `timespan`, field
//! `aliases` and `generate`.
//!
//! The base rules a correlation names (by `name` or `id`) are ordinary Sigma rules evaluated
//! by [`crate::sigma`]; their detections, together with the log record that triggered each
//! one, feed [`CorrelationState::observe`]. Per correlation and group (the values of the
//! `group-by` fields in the log record, or of their aliases), a sliding window of length
//! `timespan` (event time) holds the base matches; when the condition holds, a `detection`
//! of engine `sigma-correlation` is raised with the contributing records as evidence, and the
//! group's window starts over (one detection per burst, not one per further event).
//!
//! A base rule referenced only by correlations that do not set `generate: true` does not
//! raise detections of its own (Sigma 2.1's default); [`CorrelationRules::suppresses`] says
//! which.
//!
//! State is bounded. Windows that can no longer fire (every entry older than the correlation's
//! timespan plus [`ALLOWED_LATENESS_US`] at the latest event time seen in the partition, or
//! emptied by a firing) are pruned as event time moves (a sweep per minute of event time) and,
//! when the bus is idle, as wall-clock time passes ([`CorrelationState::prune`]). The latest
//! time is the partition's, shared by many hosts: a host whose records arrive more than the
//! lateness behind the others loses its partial windows (counted as expired). Beyond the configured number of
//! windows ([`CorrelationState::set_max_groups`], [`MAX_GROUPS`] by default, per bus partition)
//! the least recently updated tenth is evicted, counted (`soc_correlator_correlation_windows_evicted_total`,
//! [`CorrelationState::evicted`]) and logged; a window holds at most `MAX_EVENTS_PER_GROUP`
//! entries (the oldest go first). The bus keys logs by host, so all records of one host meet on one
//! partition: the correlator keeps one state per bus partition and checkpoints it with the
//! partition's offsets ([`crate::checkpoint`]), so windows survive a restart
//! ([`CorrelationState::snapshot`], [`CorrelationState::restore`]).

use crate::sigma::RuleLoadError;
use rsigma_parser::{ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, parse_sigma_yaml};
use serde_json::Value;
use soc_model::{Detection, Event, EventType, Level};
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;

/// How far behind the latest event time of its partition a host's records may run before its
/// partial windows are pruned (one hour): hosts that forward in batches or catch up after an
/// outage still correlate.
pub const ALLOWED_LATENESS_US: i64 = 3_600_000_000;

/// Windows kept at most by default (all correlations of one bus partition together).
pub const MAX_GROUPS: usize = 100_000;
/// Event time between two sweeps of expired windows (micros).
const SWEEP_EVERY_US: i64 = 60_000_000;
/// Entries kept per window.
pub const MAX_EVENTS_PER_GROUP: usize = 10_000;

/// One loaded correlation rule.
#[derive(Clone, Debug)]
pub struct Correlation {
    pub id: String,
    pub title: String,
    pub level: Level,
    pub tags: Vec<String>,
    kind: CorrelationType,
    /// Base rule references as written (names or ids), in order (for `temporal_ordered`).
    refs: Vec<String>,
    group_by: Vec<String>,
    timespan_us: i64,
    predicates: Vec<(ConditionOperator, u64)>,
    /// The field whose distinct values `value_count` counts.
    field: Option<String>,
    /// alias -> (rule reference -> field name in that rule's events).
    aliases: HashMap<String, HashMap<String, String>>,
}

/// Correlation rules and the map from base rule ids to them.
#[derive(Clone, Debug, Default)]
pub struct CorrelationRules {
    rules: Vec<Correlation>,
    /// Base rule id -> (correlation index, reference as written in the correlation).
    by_base_id: HashMap<String, Vec<(usize, String)>>,
    /// Base rule ids that raise no detection of their own.
    quiet: HashSet<String>,
}

impl CorrelationRules {
    /// Loads the correlation documents under `paths` (files or directories, as for Sigma
    /// rules) and resolves their references against the base rules of the same files and
    /// directories. A correlation that cannot be used is reported with its file and reason.
    pub fn load(paths: &[PathBuf]) -> (CorrelationRules, Vec<RuleLoadError>) {
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for f in crate::sigma::load::rule_files(paths, &mut errors) {
            match std::fs::read_to_string(&f) {
                Ok(t) => sources.push((f, t)),
                Err(e) => errors.push(RuleLoadError::new(&f, format!("cannot read: {e}"))),
            }
        }
        let (rules, mut errs) = Self::from_sources(&sources);
        errors.append(&mut errs);
        (rules, errors)
    }

    /// Like [`load`](Self::load) from `(file, text)` pairs.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> (CorrelationRules, Vec<RuleLoadError>) {
        let mut errors = Vec::new();
        let mut corrs: Vec<(PathBuf, CorrelationRule)> = Vec::new();
        // name -> id of base rules (a reference may use either).
        let mut name_to_id: HashMap<String, String> = HashMap::new();
        let mut ids: HashSet<String> = HashSet::new();
        for (file, text) in sources {
            // Files without correlations only contribute their rules' ids and names, read from
            // the top-level `id:`/`name:` lines of each document (parse errors are the Sigma
            // loader's to report).
            if !text.contains("correlation:") {
                for doc in text.split("\n---") {
                    let top = |key: &str| {
                        doc.lines().find_map(|l| {
                            let v = l.strip_prefix(key)?.trim().trim_matches(|c| c == '\'' || c == '"');
                            (!v.is_empty()).then(|| v.to_string())
                        })
                    };
                    if let Some(id) = top("id:") {
                        ids.insert(id.clone());
                        if let Some(n) = top("name:") {
                            name_to_id.insert(n, id);
                        }
                    }
                }
                continue;
            }
            let Ok(c) = parse_sigma_yaml(text) else { continue };
            for r in &c.rules {
                if let Some(id) = &r.id {
                    ids.insert(id.clone());
                    if let Some(n) = &r.name {
                        name_to_id.insert(n.clone(), id.clone());
                    }
                }
            }
            for cr in c.correlations {
                corrs.push((file.clone(), cr));
            }
        }
        let mut out = CorrelationRules::default();
        let mut generating: HashSet<String> = HashSet::new();
        let mut referenced: HashSet<String> = HashSet::new();
        for (file, cr) in corrs {
            let resolve = |r: &str| name_to_id.get(r).cloned().or_else(|| ids.contains(r).then(|| r.to_string()));
            let mut unresolved = Vec::new();
            let mut base_ids = Vec::new();
            for r in &cr.rules {
                match resolve(r) {
                    Some(id) => base_ids.push((id, r.clone())),
                    None => unresolved.push(r.clone()),
                }
            }
            if !unresolved.is_empty() {
                errors.push(RuleLoadError::new(
                    &file,
                    format!("correlation {:?}: base rule(s) not found: {}", cr.title, unresolved.join(", ")),
                ));
                continue;
            }
            let (predicates, field) = match &cr.condition {
                CorrelationCondition::Threshold { predicates, field, .. } => {
                    (predicates.clone(), field.as_ref().and_then(|f| f.first().cloned()))
                }
                CorrelationCondition::Extended(_) => {
                    errors.push(RuleLoadError::new(
                        &file,
                        format!("correlation {:?}: extended (boolean) conditions are not supported", cr.title),
                    ));
                    continue;
                }
            };
            match cr.correlation_type {
                CorrelationType::EventCount | CorrelationType::Temporal | CorrelationType::TemporalOrdered => {}
                CorrelationType::ValueCount if field.is_some() => {}
                CorrelationType::ValueCount => {
                    errors.push(RuleLoadError::new(
                        &file,
                        format!("correlation {:?}: value_count needs condition.field", cr.title),
                    ));
                    continue;
                }
                other => {
                    errors.push(RuleLoadError::new(
                        &file,
                        format!("correlation {:?}: type {} is not supported", cr.title, other.as_str()),
                    ));
                    continue;
                }
            }
            let idx = out.rules.len();
            for (id, written) in &base_ids {
                out.by_base_id.entry(id.clone()).or_default().push((idx, written.clone()));
                referenced.insert(id.clone());
                if cr.generate {
                    generating.insert(id.clone());
                }
            }
            out.rules.push(Correlation {
                id: cr.id.clone().unwrap_or_else(|| cr.title.clone()),
                title: cr.title.clone(),
                // A correlation without a level weighs medium (base rules default lower).
                level: crate::sigma::level(cr.level.or(Some(rsigma_parser::Level::Medium))),
                tags: cr.tags.clone(),
                kind: cr.correlation_type,
                refs: cr.rules.clone(),
                group_by: cr.group_by.clone(),
                timespan_us: i64::try_from(cr.timespan.seconds.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
                predicates,
                field,
                aliases: cr.aliases.iter().map(|a| (a.alias.clone(), a.mapping.clone())).collect(),
            });
        }
        out.quiet = referenced.difference(&generating).cloned().collect();
        (out, errors)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
    pub fn rules(&self) -> &[Correlation] {
        &self.rules
    }

    /// True when detections of this base rule id are only inputs of correlations.
    pub fn suppresses(&self, base_rule_id: &str) -> bool {
        self.quiet.contains(base_rule_id)
    }

    /// True when some correlation uses this base rule.
    pub fn uses(&self, base_rule_id: &str) -> bool {
        self.by_base_id.contains_key(base_rule_id)
    }
}

fn holds(predicates: &[(ConditionOperator, u64)], n: u64) -> bool {
    !predicates.is_empty()
        && predicates.iter().all(|(op, v)| match op {
            ConditionOperator::Lt => n < *v,
            ConditionOperator::Lte => n <= *v,
            ConditionOperator::Gt => n > *v,
            ConditionOperator::Gte => n >= *v,
            ConditionOperator::Eq => n == *v,
            ConditionOperator::Neq => n != *v,
        })
}

/// A field of a log record, as text (for grouping and distinct counting): a normalized log
/// field, else an envelope field (`host`, `src_ip`, `dest_ip`, `sensor`, `segment`).
fn field_text(log: &Event, name: &str) -> Option<String> {
    let envelope = match name {
        "host" => log.host.as_ref(),
        "src_ip" => log.src_ip.as_ref(),
        "dest_ip" => log.dest_ip.as_ref(),
        "sensor" => log.sensor.as_ref(),
        "segment" => log.segment.as_ref(),
        _ => None,
    };
    let v = log.log.as_ref().and_then(|l| l.fields.get(name)).or_else(|| log.extra.get(name));
    if v.is_none() {
        return envelope.cloned();
    }
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Window {
    /// (time, reference written in the rule, record id, counted value)
    entries: VecDeque<(i64, String, String, Option<String>)>,
    last: i64,
}

/// One window in a checkpoint: the correlation by id (indices change when rules change).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowSnapshot {
    correlation: String,
    group: Vec<String>,
    window: Window,
}

/// The sliding windows of every correlation and group.
#[derive(Debug)]
pub struct CorrelationState {
    windows: HashMap<(usize, Vec<String>), Window>,
    /// Windows evicted because the state was full (this process).
    pub evicted: u64,
    /// Windows pruned because they could no longer fire (this process).
    pub expired: u64,
    max_groups: usize,
    /// How far behind the watermark a window's newest entry may be before pruning, beyond
    /// the timespan (micros; [`ALLOWED_LATENESS_US`] by default).
    lateness_us: i64,
    /// Latest event time seen (micros).
    watermark: i64,
    /// Watermark at the last sweep.
    swept: i64,
}

impl Default for CorrelationState {
    fn default() -> Self {
        CorrelationState {
            windows: HashMap::new(),
            evicted: 0,
            expired: 0,
            max_groups: MAX_GROUPS,
            lateness_us: ALLOWED_LATENESS_US,
            watermark: i64::MIN,
            swept: i64::MIN,
        }
    }
}

impl CorrelationState {
    /// Feeds one base-rule detection and the log record that triggered it; appends the
    /// correlation detections it completes.
    pub fn observe(&mut self, rules: &CorrelationRules, detection: &Event, log: &Event, out: &mut Vec<Event>) {
        let Some(d) = detection.detection.as_ref() else { return };
        let Some(users) = rules.by_base_id.get(&d.rule_id) else { return };
        let now = log.timestamp.unix_micros();
        self.watermark = self.watermark.max(now);
        if self.watermark.saturating_sub(self.swept) >= SWEEP_EVERY_US {
            self.prune(rules, self.watermark);
        }
        let record = log.id.clone().unwrap_or_else(|| log.compute_id());
        for (idx, written) in users {
            let Some(c) = rules.rules.get(*idx) else { continue };
            // Group key: each group-by field (through its alias for this rule), in order.
            let mut key = Vec::with_capacity(c.group_by.len());
            let mut complete = true;
            for g in &c.group_by {
                let name = c.aliases.get(g).and_then(|m| m.get(written).or_else(|| m.get(&d.rule_id))).unwrap_or(g);
                match field_text(log, name) {
                    Some(v) => key.push(v),
                    None => {
                        complete = false;
                        break;
                    }
                }
            }
            if !complete {
                continue; // Sigma: events lacking a group-by field are not correlated.
            }
            let value = match &c.field {
                Some(f) => match field_text(log, f) {
                    Some(v) => Some(v),
                    None => continue,
                },
                None => None,
            };
            if self.windows.len() >= self.max_groups.max(1) && !self.windows.contains_key(&(*idx, key.clone())) {
                self.make_room(rules);
            }
            let w = self.windows.entry((*idx, key.clone())).or_default();
            while w.entries.front().is_some_and(|(t, ..)| now - *t > c.timespan_us) {
                w.entries.pop_front();
            }
            if w.entries.len() >= MAX_EVENTS_PER_GROUP {
                w.entries.pop_front();
            }
            w.entries.push_back((now, written.clone(), record.clone(), value));
            w.last = w.last.max(now);
            let fired = match c.kind {
                CorrelationType::EventCount => holds(&c.predicates, w.entries.len() as u64),
                CorrelationType::ValueCount => {
                    let distinct: HashSet<&str> = w.entries.iter().filter_map(|e| e.3.as_deref()).collect();
                    holds(&c.predicates, distinct.len() as u64)
                }
                CorrelationType::Temporal => {
                    let seen: HashSet<&str> = w.entries.iter().map(|e| e.1.as_str()).collect();
                    let n = seen.len() as u64;
                    if c.predicates.is_empty() { n as usize == c.refs.len() } else { holds(&c.predicates, n) }
                }
                CorrelationType::TemporalOrdered => {
                    // The references, in their order, each matched after the previous one.
                    let mut next = 0;
                    for e in &w.entries {
                        if c.refs.get(next).is_some_and(|r| *r == e.1) {
                            next += 1;
                        }
                    }
                    next == c.refs.len()
                }
                _ => false,
            };
            if fired {
                let evidence: Vec<String> =
                    w.entries.iter().map(|e| e.2.clone()).collect::<BTreeSet<_>>().into_iter().take(100).collect();
                let count = w.entries.len();
                w.entries.clear();
                out.push(correlation_detection(c, &key, log, evidence, count));
                metrics::counter!("soc_correlator_sigma_correlations_total").increment(1);
            }
        }
    }

    /// Windows kept at most (default [`MAX_GROUPS`]); a state restored over the cap keeps
    /// the most recently updated ones.
    /// Sets how far (micros) a host's records may run behind the partition's latest event time
    /// before its partial windows are pruned.
    pub fn set_lateness_us(&mut self, lateness_us: i64) {
        self.lateness_us = lateness_us.max(0);
    }

    pub fn set_max_groups(&mut self, max_groups: usize) {
        self.max_groups = max_groups.max(1);
        if self.windows.len() > self.max_groups {
            let n = self.windows.len() - self.max_groups;
            self.evict(n);
        }
    }

    /// Drops the windows that can no longer fire at event time `now` (micros): emptied by a
    /// firing, or every entry older than the correlation's timespan plus
    /// [`ALLOWED_LATENESS_US`] (the next record of the group would slide them all out, unless
    /// that host's records run more than the lateness behind the partition). Returns how many.
    pub fn prune(&mut self, rules: &CorrelationRules, now: i64) -> usize {
        let before = self.windows.len();
        let lateness = self.lateness_us;
        self.windows.retain(|(idx, _), w| {
            let span = rules.rules.get(*idx).map_or(0, |c| c.timespan_us);
            w.entries.back().is_some_and(|(t, ..)| now.saturating_sub(*t) <= span.saturating_add(lateness))
        });
        self.swept = self.swept.max(now);
        let n = before - self.windows.len();
        if n > 0 {
            self.expired += n as u64;
            metrics::counter!("soc_correlator_correlation_windows_expired_total").increment(n as u64);
        }
        n
    }

    /// The latest event time seen (micros), if any.
    pub fn watermark(&self) -> Option<i64> {
        (self.watermark != i64::MIN).then_some(self.watermark)
    }

    /// Makes room for one window: prunes, then evicts the least recently updated tenth.
    fn make_room(&mut self, rules: &CorrelationRules) {
        if self.watermark != i64::MIN {
            self.prune(rules, self.watermark);
        }
        if self.windows.len() >= self.max_groups {
            let n = (self.windows.len() / 10).max(1);
            self.evict(n);
        }
    }

    fn evict(&mut self, n: usize) {
        let mut by_age: Vec<(i64, (usize, Vec<String>))> =
            self.windows.iter().map(|(k, w)| (w.last, k.clone())).collect();
        by_age.sort_unstable();
        let oldest = by_age.first().map(|(t, _)| *t).unwrap_or_default();
        for (_, k) in by_age.into_iter().take(n) {
            self.windows.remove(&k);
        }
        self.evicted += n as u64;
        metrics::counter!("soc_correlator_correlation_windows_evicted_total").increment(n as u64);
        tracing::warn!(
            evicted = n,
            max_groups = self.max_groups,
            oldest_update = %soc_model::Timestamp::from_unix_micros(oldest),
            "correlation state full: least recently updated windows dropped (their partial matches are lost)"
        );
    }

    /// The windows, for a checkpoint.
    pub fn snapshot(&self, rules: &CorrelationRules) -> Vec<WindowSnapshot> {
        let mut out: Vec<WindowSnapshot> = self
            .windows
            .iter()
            .filter(|(_, w)| !w.entries.is_empty())
            .filter_map(|((idx, group), w)| {
                Some(WindowSnapshot {
                    correlation: rules.rules.get(*idx)?.id.clone(),
                    group: group.clone(),
                    window: w.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.correlation, &a.group).cmp(&(&b.correlation, &b.group)));
        out
    }

    /// Windows from a checkpoint; those of correlations no longer loaded are dropped and
    /// counted in the second value. The default cap applies ([`Self::set_max_groups`] to
    /// change it).
    pub fn restore(rules: &CorrelationRules, snapshot: Vec<WindowSnapshot>) -> (CorrelationState, usize) {
        let idx: HashMap<&str, usize> = rules.rules.iter().enumerate().map(|(i, c)| (c.id.as_str(), i)).collect();
        let mut st = CorrelationState::default();
        let mut dropped = 0;
        for s in snapshot {
            match idx.get(s.correlation.as_str()) {
                Some(i) => {
                    st.watermark = st.watermark.max(s.window.last);
                    st.windows.insert((*i, s.group), s.window);
                }
                None => dropped += 1,
            }
        }
        // Over the cap (a smaller cap than when it was written): the most recent are kept.
        let max = st.max_groups;
        st.set_max_groups(max);
        (st, dropped)
    }

    /// Open windows.
    pub fn len(&self) -> usize {
        self.windows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

fn correlation_detection(c: &Correlation, key: &[String], log: &Event, evidence: Vec<String>, count: usize) -> Event {
    let mut d = Event::new(EventType::Detection, log.timestamp);
    d.host = log.host.clone();
    d.segment = log.segment.clone();
    d.sensor = log.sensor.clone();
    d.src_ip = log.src_ip.clone();
    let mut extra = serde_json::Map::new();
    let group: serde_json::Map<String, Value> =
        c.group_by.iter().cloned().zip(key.iter().cloned().map(Value::String)).collect();
    extra.insert("group".into(), Value::Object(group));
    // `count` is the alert deduplication's (how many alerts one alert stands for).
    extra.insert("event_count".into(), Value::from(count as u64));
    extra.insert("correlation_type".into(), Value::String(c.kind.as_str().into()));
    d.detection = Some(Detection {
        engine: "sigma-correlation".into(),
        rule_id: c.id.clone(),
        rule_title: c.title.clone(),
        level: c.level,
        tags: c.tags.clone(),
        logsource: log.log.as_ref().map(|l| l.logsource.clone()),
        evidence,
        extra,
    });
    d.ensure_id();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::{Log, Timestamp};

    const RULES: &str = r#"
title: Many failed logons for one user
id: corr-1
correlation:
    type: event_count
    rules:
        - failed_logon
    group-by:
        - TargetUserName
    timespan: 5m
    condition:
        gte: 3
level: high
---
title: Spray
id: corr-2
correlation:
    type: value_count
    rules:
        - failed_logon
    group-by:
        - IpAddress
    timespan: 5m
    condition:
        gt: 2
        field: TargetUserName
level: medium
---
title: Failed logon
id: base-1
name: failed_logon
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4625
    condition: selection
level: low
"#;

    fn rules() -> CorrelationRules {
        let (r, errs) = CorrelationRules::from_sources(&[(PathBuf::from("r.yml"), RULES.to_string())]);
        assert!(errs.is_empty(), "{errs:?}");
        r
    }

    fn pair(secs: i64, user: &str, ip: &str) -> (Event, Event) {
        let mut log = Event::new(EventType::Log, Timestamp::from_unix_micros(1_700_000_000_000_000 + secs * 1_000_000));
        let mut l = Log::default();
        l.fields.insert("TargetUserName".into(), Value::String(user.into()));
        l.fields.insert("IpAddress".into(), Value::String(ip.into()));
        log.log = Some(l);
        log.ensure_id();
        let mut det = Event::new(EventType::Detection, log.timestamp);
        det.detection = Some(Detection { engine: "sigma".into(), rule_id: "base-1".into(), ..Default::default() });
        (log, det)
    }

    fn titles(out: &[Event]) -> Vec<String> {
        out.iter().map(|e| e.detection.as_ref().unwrap().rule_title.clone()).collect()
    }

    #[test]
    fn event_count_fires_once_per_burst_per_group() {
        let r = rules();
        assert_eq!(r.len(), 2);
        assert!(r.suppresses("base-1"), "generate defaults to false");
        let mut st = CorrelationState::default();
        let mut out = Vec::new();
        for i in 0..2 {
            let (l, d) = pair(i, "alice", "10.0.0.1");
            st.observe(&r, &d, &l, &mut out);
        }
        let (l, d) = pair(2, "bob", "10.0.0.9");
        st.observe(&r, &d, &l, &mut out);
        assert!(out.is_empty(), "{:?}", titles(&out));
        let (l, d) = pair(3, "alice", "10.0.0.1");
        st.observe(&r, &d, &l, &mut out);
        assert_eq!(titles(&out), vec!["Many failed logons for one user"]);
        let det = out[0].detection.as_ref().unwrap();
        assert_eq!((det.engine.as_str(), det.level, det.evidence.len()), ("sigma-correlation", Level::High, 3));
        assert_eq!(det.extra["group"]["TargetUserName"], "alice");
    }

    #[test]
    fn value_count_counts_distinct_values_within_the_timespan() {
        let r = rules();
        let mut st = CorrelationState::default();
        let mut out = Vec::new();
        for (t, u) in [(0, "a"), (10, "a"), (20, "b"), (400, "c"), (410, "d")] {
            let (l, d) = pair(t, u, "10.0.0.5");
            st.observe(&r, &d, &l, &mut out);
        }
        assert!(out.iter().all(|e| e.detection.as_ref().unwrap().rule_id != "corr-2"), "a, b then c, d: never 3 in 5m");
        let (l, d) = pair(420, "e", "10.0.0.5");
        st.observe(&r, &d, &l, &mut out);
        assert!(titles(&out).contains(&"Spray".to_string()));
    }

    #[test]
    fn records_without_a_group_by_field_are_not_correlated_and_unknown_references_are_errors() {
        let r = rules();
        let mut st = CorrelationState::default();
        let mut out = Vec::new();
        let (mut l, d) = pair(0, "x", "1.1.1.1");
        l.log.as_mut().unwrap().fields.remove("TargetUserName");
        for _ in 0..5 {
            st.observe(&r, &d, &l, &mut out);
        }
        assert!(titles(&out).iter().all(|t| t != "Many failed logons for one user"));
        let bad =
            "title: x\ncorrelation:\n  type: event_count\n  rules: [nope]\n  timespan: 1m\n  condition: {gte: 1}\n";
        let (r, errs) = CorrelationRules::from_sources(&[(PathBuf::from("bad.yml"), bad.to_string())]);
        assert!(r.is_empty());
        assert!(errs[0].to_string().contains("bad.yml") && errs[0].reason.contains("nope"), "{errs:?}");
    }

    #[test]
    fn windows_that_can_no_longer_fire_are_pruned_so_many_groups_stay_bounded() {
        let r = rules();
        let mut st = CorrelationState::default();
        st.set_lateness_us(0);
        let mut out = Vec::new();
        let mut most = 0;
        // 10,000 distinct users and addresses, one failed logon each, one per second: the
        // windows (5 minutes) of the old ones can no longer fire.
        for i in 0..10_000 {
            let (l, d) = pair(i, &format!("u{i}"), &format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256));
            st.observe(&r, &d, &l, &mut out);
            most = most.max(st.len());
        }
        assert!(out.is_empty());
        // Two correlations x (5 minutes + a minute between sweeps) of groups at most.
        assert!(most <= 2 * 362, "{most} windows");
        assert_eq!(st.evicted, 0);
        assert!(st.expired > 19_000, "{}", st.expired);
        // Idle: wall-clock time moved the horizon past every window.
        let now = st.watermark().unwrap() + 301_000_000;
        st.prune(&r, now);
        assert!(st.is_empty());
    }

    #[test]
    fn a_host_running_behind_the_partition_within_the_lateness_still_correlates() {
        let r = rules();
        let mut st = CorrelationState::default();
        let mut out = Vec::new();
        // bob's first failed logon, then other hosts' records push the partition's time 20
        // minutes on (several sweeps), then bob's two other logons arrive with their own
        // (older) times: his window was kept and the third logon fires the correlation.
        let (l, d) = pair(0, "bob", "10.9.9.9");
        st.observe(&r, &d, &l, &mut out);
        for i in 1..1200 {
            let (l, d) = pair(i, &format!("u{i}"), &format!("10.1.{}.{}", i / 256, i % 256));
            st.observe(&r, &d, &l, &mut out);
        }
        assert!(out.is_empty());
        for t in 1..3 {
            let (l, d) = pair(t, "bob", "10.9.9.9");
            st.observe(&r, &d, &l, &mut out);
        }
        assert!(titles(&out).contains(&"Many failed logons for one user".to_string()), "{:?}", titles(&out));
        // Without lateness the same sequence loses bob's first logon to a sweep.
        let mut strict = CorrelationState::default();
        strict.set_lateness_us(0);
        let mut out = Vec::new();
        let (l, d) = pair(0, "bob", "10.9.9.9");
        strict.observe(&r, &d, &l, &mut out);
        for i in 1..1200 {
            let (l, d) = pair(i, &format!("u{i}"), &format!("10.1.{}.{}", i / 256, i % 256));
            strict.observe(&r, &d, &l, &mut out);
        }
        for t in 1..3 {
            let (l, d) = pair(t, "bob", "10.9.9.9");
            strict.observe(&r, &d, &l, &mut out);
        }
        assert!(!titles(&out).contains(&"Many failed logons for one user".to_string()));
    }

    #[test]
    fn a_full_state_evicts_the_least_recently_updated_windows_and_counts_them() {
        let r = rules();
        let mut st = CorrelationState::default();
        st.set_max_groups(50);
        let mut out = Vec::new();
        // alice's window gets two logons first; then 1,000 distinct users within the timespan.
        for t in 0..2 {
            let (l, d) = pair(t, "alice", "10.0.0.1");
            st.observe(&r, &d, &l, &mut out);
        }
        for i in 0..1_000 {
            let (l, d) = pair(2 + i / 10, &format!("u{i}"), &format!("10.1.{}.{}", i / 256, i % 256));
            st.observe(&r, &d, &l, &mut out);
            assert!(st.len() <= 50, "{} windows", st.len());
        }
        assert!(out.is_empty());
        assert!(st.evicted >= 1_950, "{}", st.evicted);
        assert_eq!(st.expired, 0, "all within the timespan");
        // alice's window was the least recently updated: evicted, her partial count lost.
        let (l, d) = pair(110, "alice", "10.0.0.1");
        out.clear();
        st.observe(&r, &d, &l, &mut out);
        assert!(!titles(&out).contains(&"Many failed logons for one user".to_string()));
        // A restored snapshot larger than the cap keeps the most recent windows.
        let snap = st.snapshot(&r);
        let (mut back, dropped) = CorrelationState::restore(&r, snap);
        assert_eq!(dropped, 0);
        back.set_max_groups(10);
        assert_eq!(back.len(), 10);
    }

    #[test]
    fn temporal_ordered_needs_the_order() {
        let text = r#"
title: Recon then exec
id: corr-3
correlation:
    type: temporal_ordered
    rules: [recon, exec]
    group-by: [Computer]
    timespan: 1h
---
title: R
id: r-1
name: recon
logsource: {product: windows}
detection: {s: {EventID: 1}, condition: s}
---
title: E
id: e-1
name: exec
logsource: {product: windows}
detection: {s: {EventID: 2}, condition: s}
"#;
        let (r, errs) = CorrelationRules::from_sources(&[(PathBuf::from("t.yml"), text.to_string())]);
        assert!(errs.is_empty(), "{errs:?}");
        let ev = |secs: i64, rule: &str| {
            let mut log = Event::new(EventType::Log, Timestamp::from_unix_micros(secs * 1_000_000));
            let mut l = Log::default();
            l.fields.insert("Computer".into(), Value::String("ws1".into()));
            log.log = Some(l);
            log.ensure_id();
            let mut det = Event::new(EventType::Detection, log.timestamp);
            det.detection = Some(Detection { rule_id: rule.into(), ..Default::default() });
            (log, det)
        };
        let mut st = CorrelationState::default();
        let mut out = Vec::new();
        for (t, rule) in [(1, "e-1"), (2, "r-1")] {
            let (l, d) = ev(t, rule);
            st.observe(&r, &d, &l, &mut out);
        }
        assert!(out.is_empty(), "exec before recon");
        let (l, d) = ev(3, "e-1");
        st.observe(&r, &d, &l, &mut out);
        assert_eq!(titles(&out), vec!["Recon then exec"]);
    }
}
