//! Alert deduplication and suppression: one alert per rule and entity within a window.
//!
//! A detection (Sigma, correlation, IOC) is keyed by its engine, rule id and the values of the
//! entity fields ([`DedupOptions::entity_fields`]: `host`, `src_ip`, `dest_ip` by default;
//! `user` is the account the detection names). The first detection of a key is emitted as it
//! is, annotated with `count: 1`, `first_seen` and `last_seen` (in `detection`'s extra fields,
//! additive to the model). Later detections of the key whose event time is within `window` of
//! the first are not emitted: they add to `count`, move `last_seen` and append their evidence
//! (up to [`MAX_EVIDENCE`] record ids). At each flush (once per consumed batch) every alert
//! that grew is re-emitted once with the **same id** and the new totals, so a store that keeps
//! the latest version per id (`count` only grows: it orders the versions) ends with the total.
//! A detection after the window opens a new alert (its own id).
//!
//! State is bounded. Keys whose window has passed (by event time: the latest detection time
//! seen, the watermark, less [`DedupOptions::lateness`], an hour by default) are pruned as the watermark moves (a
//! sweep per quarter window of event time) and, when the bus is idle, as wall-clock time passes
//! ([`DedupState::prune`]): their last version was emitted at the flush that followed their last
//! change, so no count is lost
//! (`soc_correlator_dedup_expired_total`). Beyond [`DedupOptions::max_keys`] keys per bus
//! partition, the least recently seen tenth of the open alerts is evicted (their final
//! versions are emitted at the next flush); evictions are counted
//! (`soc_correlator_dedup_evicted_total`, [`DedupState::evicted`]) and logged: a repeat of an
//! evicted alert within its window opens a new alert. Suppressed detections are counted
//! (`soc_correlator_dedup_suppressed_total`) and are part of the emitted alert's count:
//! nothing is dropped silently. The state is serializable: the correlator checkpoints it with
//! the partition's offsets ([`crate::checkpoint`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use soc_model::{Event, EventType, Timestamp};
use std::collections::HashMap;
use std::time::Duration;

/// Evidence record ids kept per alert.
pub const MAX_EVIDENCE: usize = 100;

/// How detections are deduplicated.
#[derive(Clone, Debug, PartialEq)]
pub struct DedupOptions {
    /// Later detections of a key within this much event time of its first are folded into it.
    pub window: Duration,
    /// Fields naming the entity: `host`, `src_ip`, `dest_ip`, `segment`, `sensor`, `user`, or a
    /// field of the detection's extra data (`group.TargetUserName`-style paths are not used).
    pub entity_fields: Vec<String>,
    /// Keys kept per bus partition.
    pub max_keys: usize,
    /// How far behind the partition's latest detection time a key's first detection may be
    /// before it is pruned, beyond the window (detections of hosts that run behind still fold).
    pub lateness: Duration,
}

impl Default for DedupOptions {
    fn default() -> Self {
        DedupOptions {
            window: Duration::from_secs(600),
            entity_fields: vec!["host".into(), "src_ip".into(), "dest_ip".into()],
            max_keys: 100_000,
            lateness: Duration::from_micros(crate::correlation::ALLOWED_LATENESS_US.unsigned_abs()),
        }
    }
}

/// One open alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// The alert as emitted (its id is the alert's id), with the running totals.
    alert: Event,
    first_seen: i64,
    last_seen: i64,
    count: u64,
    /// Grew since the last flush (checkpoints are written after the flush: never saved true).
    #[serde(skip)]
    dirty: bool,
}

/// Open alerts of one partition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupState {
    entries: HashMap<String, Entry>,
    /// Latest event time seen (micros): expiry reference.
    watermark: i64,
    /// Watermark at the last sweep of expired keys.
    #[serde(default)]
    swept: i64,
    /// Open alerts evicted because the state was full (this process).
    #[serde(skip)]
    pub evicted: u64,
    /// Keys pruned because their window had passed (this process).
    #[serde(skip)]
    pub expired: u64,
    #[serde(skip)]
    dirty: Vec<String>,
    /// Final versions of alerts closed (window passed) while they had grown since the last
    /// flush: emitted at the next flush.
    #[serde(skip)]
    closed: Vec<Event>,
}

fn entity_value(ev: &Event, field: &str) -> Option<String> {
    match field {
        "host" => ev.host.clone(),
        "src_ip" => ev.src_ip.clone(),
        "dest_ip" => ev.dest_ip.clone(),
        "segment" => ev.segment.clone(),
        "sensor" => ev.sensor.clone(),
        "user" => crate::incidents::summarize(ev).and_then(|a| a.user),
        other => {
            let v = ev.detection.as_ref().and_then(|d| d.extra.get(other)).or_else(|| ev.extra.get(other))?;
            Some(match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
    }
}

/// The dedup key of a detection: engine, rule id and entity values.
pub fn key(ev: &Event, entity_fields: &[String]) -> Option<String> {
    let d = ev.detection.as_ref()?;
    let mut k = format!("{}\u{1f}{}", d.engine, d.rule_id);
    for f in entity_fields {
        k.push('\u{1f}');
        if let Some(v) = entity_value(ev, f) {
            k.push_str(&v.to_ascii_lowercase());
        }
    }
    Some(k)
}

fn annotate(alert: &mut Event, count: u64, first: i64, last: i64) {
    if let Some(d) = alert.detection.as_mut() {
        d.extra.insert("count".into(), Value::from(count));
        let ts = |t: i64| serde_json::to_value(Timestamp::from_unix_micros(t)).unwrap_or(Value::Null);
        d.extra.insert("first_seen".into(), ts(first));
        d.extra.insert("last_seen".into(), ts(last));
    }
}

impl DedupState {
    /// Open alerts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes one detection: returns it (annotated) when it opens an alert, `None` when it was
    /// folded into an open one. Records that are not detections pass unchanged.
    pub fn admit(&mut self, opts: &DedupOptions, mut det: Event) -> Option<Event> {
        if det.event_type != EventType::Detection {
            return Some(det);
        }
        let Some(k) = key(&det, &opts.entity_fields) else { return Some(det) };
        det.ensure_id();
        let now = det.timestamp.unix_micros();
        self.watermark = self.watermark.max(now);
        let window = window_us(opts);
        if self.watermark.saturating_sub(self.swept) >= (window / 4).max(1) {
            self.prune(opts, self.watermark);
        }
        if let Some(e) = self.entries.get_mut(&k)
            && now.saturating_sub(e.first_seen).abs() <= window
        {
            if det.id == e.alert.id {
                return None; // the alert itself again (a redelivered record)
            }
            e.count += 1;
            e.first_seen = e.first_seen.min(now);
            e.last_seen = e.last_seen.max(now);
            if let (Some(a), Some(d)) = (e.alert.detection.as_mut(), det.detection.as_ref()) {
                for id in &d.evidence {
                    if a.evidence.len() >= MAX_EVIDENCE {
                        break;
                    }
                    if !a.evidence.contains(id) {
                        a.evidence.push(id.clone());
                    }
                }
            }
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(k);
            }
            metrics::counter!("soc_correlator_dedup_suppressed_total").increment(1);
            return None;
        }
        annotate(&mut det, 1, now, now);
        if let Some(mut old) = self.entries.remove(&k)
            && old.dirty
        {
            annotate(&mut old.alert, old.count, old.first_seen, old.last_seen);
            self.closed.push(old.alert);
        }
        if !self.entries.contains_key(&k) && self.entries.len() >= opts.max_keys.max(1) {
            self.evict(opts);
        }
        self.entries.insert(k, Entry { alert: det.clone(), first_seen: now, last_seen: now, count: 1, dirty: false });
        Some(det)
    }

    /// Appends one updated version of every alert that grew since the last flush.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.closed);
        for k in std::mem::take(&mut self.dirty) {
            if let Some(e) = self.entries.get_mut(&k)
                && e.dirty
            {
                e.dirty = false;
                annotate(&mut e.alert, e.count, e.first_seen, e.last_seen);
                out.push(e.alert.clone());
            }
        }
    }

    /// Drops the keys whose window (plus [`DedupOptions::lateness`]) had passed at event time `now` (micros) and
    /// that have no unflushed growth; returns how many. Their last version was emitted already:
    /// a later detection of the key opens a new alert, as it would have anyway unless it comes
    /// from a host running more than the lateness behind the partition.
    pub fn prune(&mut self, opts: &DedupOptions, now: i64) -> usize {
        let lateness = i64::try_from(opts.lateness.as_micros()).unwrap_or(i64::MAX);
        let horizon = now.saturating_sub(window_us(opts)).saturating_sub(lateness);
        let before = self.entries.len();
        self.entries.retain(|_, e| e.dirty || e.first_seen >= horizon);
        self.swept = self.swept.max(now);
        let n = before - self.entries.len();
        if n > 0 {
            self.expired += n as u64;
            metrics::counter!("soc_correlator_dedup_expired_total").increment(n as u64);
        }
        n
    }

    /// The latest detection time seen (micros; 0 before the first).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Makes room for one key: drops the keys whose window has passed, else evicts the least
    /// recently seen tenth (their final versions go out at the next flush), counted and logged.
    fn evict(&mut self, opts: &DedupOptions) {
        self.prune(opts, self.watermark);
        if self.entries.len() < opts.max_keys.max(1) {
            return;
        }
        let mut by_age: Vec<(i64, String)> = self.entries.iter().map(|(k, e)| (e.last_seen, k.clone())).collect();
        by_age.sort_unstable();
        let n = (self.entries.len() / 10).max(1);
        let oldest = by_age.first().map(|(t, _)| *t).unwrap_or_default();
        for (_, k) in by_age.into_iter().take(n) {
            if let Some(mut e) = self.entries.remove(&k)
                && e.dirty
            {
                annotate(&mut e.alert, e.count, e.first_seen, e.last_seen);
                self.closed.push(e.alert);
            }
        }
        self.evicted += n as u64;
        metrics::counter!("soc_correlator_dedup_evicted_total").increment(n as u64);
        tracing::warn!(
            evicted = n,
            max_keys = opts.max_keys,
            oldest_last_seen = %Timestamp::from_unix_micros(oldest),
            "alert deduplication state full: least recently seen open alerts closed early (a repeat opens a new alert)"
        );
    }
}

fn window_us(opts: &DedupOptions) -> i64 {
    i64::try_from(opts.window.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_model::Detection;

    fn det(secs: i64, rule: &str, host: &str, log: &str) -> Event {
        let mut e =
            Event::new(EventType::Detection, Timestamp::from_unix_micros(1_700_000_000_000_000 + secs * 1_000_000));
        e.host = Some(host.into());
        e.detection = Some(Detection {
            engine: "sigma".into(),
            rule_id: rule.into(),
            rule_title: rule.into(),
            evidence: vec![log.into()],
            ..Default::default()
        });
        e.ensure_id();
        e
    }

    fn count(e: &Event) -> u64 {
        e.detection.as_ref().and_then(|d| d.extra.get("count")).and_then(Value::as_u64).unwrap_or(0)
    }

    #[test]
    fn one_alert_per_rule_and_entity_within_the_window_with_the_total_on_the_same_id() {
        let opts = DedupOptions { window: Duration::from_secs(60), ..Default::default() };
        let mut st = DedupState::default();
        let first = st.admit(&opts, det(0, "r1", "ws1", "l0")).unwrap();
        assert_eq!(count(&first), 1);
        assert!(st.admit(&opts, det(10, "r1", "ws1", "l1")).is_none());
        assert!(st.admit(&opts, det(20, "r1", "WS1", "l2")).is_none(), "entity values ignore case");
        // Another rule, another host: alerts of their own.
        assert!(st.admit(&opts, det(20, "r2", "ws1", "l3")).is_some());
        assert!(st.admit(&opts, det(20, "r1", "ws2", "l4")).is_some());
        let mut out = Vec::new();
        st.flush(&mut out);
        assert_eq!(out.len(), 1, "re-emitted once per flush");
        assert_eq!(out[0].id, first.id);
        assert_eq!(count(&out[0]), 3);
        let d = out[0].detection.as_ref().unwrap();
        assert_eq!(d.evidence, vec!["l0", "l1", "l2"]);
        assert_eq!(d.extra["last_seen"], serde_json::to_value(det(20, "r1", "ws1", "x").timestamp).unwrap());
        out.clear();
        st.flush(&mut out);
        assert!(out.is_empty(), "nothing grew");
        // After the window: a new alert with its own id.
        let later = st.admit(&opts, det(61, "r1", "ws1", "l5")).unwrap();
        assert_ne!(later.id, first.id);
        assert_eq!(count(&later), 1);
    }

    #[test]
    fn the_alert_itself_redelivered_is_not_counted_twice() {
        let opts = DedupOptions::default();
        let mut st = DedupState::default();
        let d = det(0, "r1", "ws1", "l0");
        assert!(st.admit(&opts, d.clone()).is_some());
        assert!(st.admit(&opts, d).is_none());
        let mut out = Vec::new();
        st.flush(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn memory_is_bounded_expired_keys_go_first_then_the_least_recent() {
        let opts = DedupOptions {
            window: Duration::from_secs(60),
            max_keys: 10,
            lateness: Duration::ZERO,
            ..Default::default()
        };
        let mut st = DedupState::default();
        for i in 0..10 {
            st.admit(&opts, det(i, "r", &format!("h{i}"), "l"));
        }
        assert_eq!(st.len(), 10);
        // Time moves past the window of all of them: the new key evicts the expired ones.
        st.admit(&opts, det(200, "r", "new", "l"));
        assert_eq!(st.len(), 1);
        for i in 0..20 {
            st.admit(&opts, det(300 + i, "r", &format!("k{i}"), "l"));
            assert!(st.len() <= 10);
        }
        // The most recent keys are still open: a repeat is folded.
        assert!(st.admit(&opts, det(321, "r", "k19", "l")).is_none());
    }

    #[test]
    fn expired_keys_are_pruned_as_event_time_moves_so_many_distinct_keys_stay_bounded() {
        let opts = DedupOptions {
            window: Duration::from_secs(60),
            max_keys: 100_000,
            lateness: Duration::ZERO,
            ..Default::default()
        };
        let mut st = DedupState::default();
        let mut most = 0;
        // 20,000 distinct hosts, one detection each, one per second of event time.
        for i in 0..20_000 {
            assert!(st.admit(&opts, det(i, "r", &format!("h{i}"), "l")).is_some());
            most = most.max(st.len());
        }
        // A window plus a quarter window of keys at most, never the 20,000.
        assert!(most <= 76, "{most} keys open at once");
        assert_eq!(st.evicted, 0, "expiry alone kept the state small: nothing evicted");
        assert!(st.expired >= 20_000 - 76, "{}", st.expired);
        // Idle: wall-clock time moved the horizon past every key.
        let n = st.prune(&opts, st.watermark() + 61_000_000);
        assert!(n > 0);
        assert!(st.is_empty());
    }

    #[test]
    fn a_full_state_evicts_the_least_recent_counts_them_and_emits_their_final_versions() {
        let opts = DedupOptions { window: Duration::from_secs(3600), max_keys: 100, ..Default::default() };
        let mut st = DedupState::default();
        // h0 grows (unflushed) before the flood of distinct keys, all within the window.
        assert!(st.admit(&opts, det(0, "r", "h0", "l0")).is_some());
        assert!(st.admit(&opts, det(1, "r", "h0", "l1")).is_none());
        for i in 1..10_000 {
            st.admit(&opts, det(2 + i, "r", &format!("h{i}"), "l"));
            assert!(st.len() <= 100, "{} keys", st.len());
        }
        assert!(st.evicted >= 9_900, "{}", st.evicted);
        assert_eq!(st.expired, 0, "nothing had expired");
        let mut out = Vec::new();
        st.flush(&mut out);
        let h0: Vec<&Event> = out.iter().filter(|e| e.host.as_deref() == Some("h0")).collect();
        assert_eq!(h0.len(), 1, "the evicted alert's final version is emitted");
        assert_eq!(count(h0[0]), 2);
    }

    #[test]
    fn a_snapshot_without_the_sweep_mark_still_loads() {
        let opts = DedupOptions::default();
        let mut st = DedupState::default();
        st.admit(&opts, det(0, "r1", "ws1", "l0"));
        let mut json = serde_json::to_value(&st).unwrap();
        json.as_object_mut().unwrap().remove("swept");
        let back: DedupState = serde_json::from_value(json).unwrap();
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn state_round_trips_through_json() {
        let opts = DedupOptions::default();
        let mut st = DedupState::default();
        st.admit(&opts, det(0, "r1", "ws1", "l0"));
        let json = serde_json::to_string(&st).unwrap();
        let mut back: DedupState = serde_json::from_str(&json).unwrap();
        assert!(back.admit(&opts, det(5, "r1", "ws1", "l1")).is_none(), "the restored alert absorbs the repeat");
        let mut out = Vec::new();
        back.flush(&mut out);
        assert_eq!(count(&out[0]), 2);
    }
}
