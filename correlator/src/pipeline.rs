//! The consume -> process -> store -> commit loop.
//!
//! Per batch: decode; GeoIP; Sigma (after the processing pipelines normalized the log, see
//! [`crate::sigma::pipeline`]); IOC; correlation windows of the record's bus partition;
//! deduplication ([`crate::dedup`]); store; publish detections; incidents; checkpoint of the
//! partitions' state ([`crate::checkpoint`]); commit.

use crate::checkpoint::{PartKey, Partitions};
use soc_bus::{Bus, BusError, Consumer, Message};
use soc_model::{DeadLetter, Event, EventType, Kind, Timestamp};
use soc_store::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How the correlator consumes.
#[derive(Clone, Debug)]
pub struct CorrelatorOptions {
    /// Consumer group: correlators sharing a group split the partitions between them.
    pub group: String,
    /// Kinds to consume.
    pub kinds: Vec<Kind>,
    /// Records per store batch.
    pub batch: usize,
    /// How long one poll waits for records.
    pub poll_timeout: Duration,
    /// How long a failing store or bus is retried before the correlator gives up.
    pub max_outage: Duration,
    /// Sigma rules run on every decoded `log` record; `None`: no Sigma detection.
    pub sigma: Option<Arc<crate::sigma::SigmaRules>>,
    /// Incident grouping of alerts and detections; `None`: no incidents.
    pub incidents: Option<crate::incidents::IncidentOptions>,
    /// Sigma correlation rules over the Sigma detections; `None`: none.
    pub correlations: Option<Arc<crate::correlation::CorrelationRules>>,
    /// GeoIP/ASN enrichment of public addresses; `None`: none.
    pub geoip: Option<Arc<crate::enrich::GeoIp>>,
    /// IOC lists matched against every record; `None`: none.
    pub ioc: Option<IocOptions>,
    /// One alert per rule and entity within a window ([`crate::dedup`]); `None`: every
    /// detection is its own alert.
    pub dedup: Option<crate::dedup::DedupOptions>,
    /// Where correlation windows and deduplication state are checkpointed per bus partition
    /// with the committed offsets ([`crate::checkpoint`]); `None`: in memory only.
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Correlation windows kept per bus partition; beyond it the least recently updated are
    /// evicted (counted and logged).
    pub correlation_max_groups: usize,
}

/// Where the IOC lists are and what their hits weigh.
#[derive(Clone, Debug)]
pub struct IocOptions {
    /// List files or directories of list files.
    pub paths: Vec<std::path::PathBuf>,
    /// Level of the detections IOC hits raise.
    pub level: soc_model::Level,
    /// How often the files are checked for changes.
    pub reload_every: Duration,
}

impl Default for CorrelatorOptions {
    fn default() -> Self {
        CorrelatorOptions {
            group: "soc-correlator".into(),
            // Not the detection and incident topics: the correlator publishes there itself
            // (and stores what it publishes directly); the forwarder and alerting consumers
            // read them.
            kinds: vec![Kind::Flow, Kind::Alert, Kind::Protocol, Kind::Log, Kind::DeadLetter],
            batch: 5_000,
            poll_timeout: Duration::from_millis(200),
            max_outage: Duration::from_secs(3600),
            sigma: None,
            incidents: Some(crate::incidents::IncidentOptions::default()),
            correlations: None,
            geoip: None,
            ioc: None,
            dedup: None,
            checkpoint_dir: None,
            correlation_max_groups: crate::correlation::MAX_GROUPS,
        }
    }
}

/// What the correlator did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorrelatorStats {
    pub consumed: u64,
    pub stored: u64,
    pub dead_letters: u64,
    pub undecodable: u64,
    pub batches: u64,
    pub detections: u64,
    /// Incident versions written (new incidents and updates).
    pub incident_versions: u64,
    /// Detections folded into an open alert by deduplication (not emitted on their own).
    pub suppressed: u64,
    /// Updated versions of deduplicated alerts emitted (same id, higher count).
    pub alert_updates: u64,
    /// Consumed records the restored state already reflected (not detected on again).
    pub replayed: u64,
    /// Partitions assigned to and revoked from this member (consumer-group rebalances).
    pub partitions_assigned: u64,
    pub partitions_revoked: u64,
    /// Wall-clock time spent per phase of the batches that carried records.
    pub time: PhaseTimes,
}

/// Milliseconds spent per phase (batches with records only; idle polls are not counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Waiting for and receiving the batch from the bus.
    pub poll_ms: u64,
    /// Decoding, enrichment, detection, correlation, deduplication.
    pub process_ms: u64,
    /// Storing the batch (records and detections).
    pub store_ms: u64,
    /// Publishing detections, incident grouping, storing and publishing incidents.
    pub publish_ms: u64,
    /// Waiting for the batch's checkpoint to be on disk.
    pub checkpoint_ms: u64,
    /// Committing the offsets.
    pub commit_ms: u64,
}

fn ms_since(t: &mut std::time::Instant) -> u64 {
    let now = std::time::Instant::now();
    let ms = now.duration_since(*t).as_millis() as u64;
    *t = now;
    ms
}

#[derive(Debug, thiserror::Error)]
pub enum CorrelatorError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

/// Feeds the Sigma detections of a batch (with the log records that triggered them) to the
/// correlation windows of their partitions; adds the correlation detections (on the partition
/// of the record that completed them) and drops the base detections that only feed
/// correlations (Sigma's `generate: false`).
fn correlate(
    rules: &crate::correlation::CorrelationRules,
    parts: &mut Partitions,
    events: &[Event],
    detections: &mut Vec<(Event, PartKey)>,
) {
    // Only the Sigma detections some correlation uses; the batch's logs are indexed only then.
    let uses = |d: &Event| {
        d.detection.as_ref().is_some_and(|x| x.engine == crate::sigma::ENGINE_NAME && rules.uses(&x.rule_id))
    };
    if !detections.iter().any(|(d, _)| uses(d)) {
        return;
    }
    let logs: std::collections::HashMap<&str, &Event> =
        events.iter().filter(|e| e.event_type == EventType::Log).filter_map(|e| Some((e.id.as_deref()?, e))).collect();
    let mut fired: Vec<(Event, PartKey)> = Vec::new();
    let mut out = Vec::new();
    for (d, part) in detections.iter().filter(|(d, _)| uses(d)) {
        let first = d.detection.as_ref().and_then(|x| x.evidence.first());
        if let Some(log) = first.and_then(|id| logs.get(id.as_str())) {
            let st = parts.state_mut(*part);
            st.correlation.observe(rules, d, log, &mut out);
            st.changed = true;
            fired.extend(out.drain(..).map(|f| (f, *part)));
        }
    }
    detections.retain(|(d, _)| {
        !d.detection.as_ref().is_some_and(|x| x.engine == crate::sigma::ENGINE_NAME && rules.suppresses(&x.rule_id))
    });
    detections.extend(fired);
    metrics::gauge!("soc_correlator_correlation_windows").set(parts.windows() as f64);
}

/// Deduplication: each detection goes through its partition's open alerts; what opens an
/// alert is kept, the rest is folded; then one updated version of each alert that grew.
fn dedup(
    opts: &crate::dedup::DedupOptions,
    parts: &mut Partitions,
    detections: Vec<(Event, PartKey)>,
    stats: &mut CorrelatorStats,
) -> Vec<Event> {
    let mut out = Vec::with_capacity(detections.len());
    for (d, part) in detections {
        let st = parts.state_mut(part);
        st.changed = true;
        match st.dedup.admit(opts, d) {
            Some(d) => out.push(d),
            None => stats.suppressed += 1,
        }
    }
    let before = out.len();
    for (_, st) in parts.iter_mut() {
        st.dedup.flush(&mut out);
    }
    let updates = (out.len() - before) as u64;
    stats.alert_updates += updates;
    metrics::counter!("soc_correlator_alert_updates_total").increment(updates);
    metrics::gauge!("soc_correlator_dedup_open_alerts").set(parts.alerts() as f64);
    out
}

/// Writes incident versions (incidents table and their `incident` records) with retries.
async fn write_incidents(
    store: &dyn Store,
    incidents: &[soc_model::Incident],
    max_outage: Duration,
) -> Result<Vec<Event>, StoreError> {
    let events: Vec<Event> = incidents.iter().map(crate::incidents::incident_event).collect();
    let mut backoff = Backoff::new(max_outage);
    loop {
        match store.upsert_incidents(incidents).await {
            Ok(()) => break,
            Err(e) if backoff.retry("store incidents", &e, e.is_transient()).await => {}
            Err(e) => return Err(e),
        }
    }
    store_with_retry(store, &events, max_outage).await?;
    Ok(events)
}

/// Turns one bus message into a storable event. Dead letters become `dead_letter` events
/// (so they are visible and searchable); a message that is not a valid record becomes a
/// `dead_letter` event of its own, with the reason: nothing consumed is dropped.
pub fn to_event(msg: &Message) -> (Event, bool) {
    if msg.kind == Kind::DeadLetter {
        let dl: DeadLetter = serde_json::from_slice(&msg.payload).unwrap_or_else(|e| {
            DeadLetter::new("bus dead-letter", format!("unreadable dead letter: {e}"), &msg.payload)
        });
        return (dead_letter_event(&dl, msg), true);
    }
    match Event::from_json(&msg.payload) {
        Ok(mut ev) => {
            ev.ensure_id();
            (ev, false)
        }
        Err(e) => {
            let dl = DeadLetter::new(format!("bus {}", msg.kind), e.to_string(), &msg.payload);
            (dead_letter_event(&dl, msg), true)
        }
    }
}

fn dead_letter_event(dl: &DeadLetter, msg: &Message) -> Event {
    let mut ev = Event::new(EventType::Other("dead_letter".into()), dl.received);
    ev.extra.insert("dead_letter".into(), serde_json::to_value(dl).unwrap_or_default());
    // Distinct per bus position, so two identical bad lines are both kept.
    ev.extra.insert(
        "bus_position".into(),
        serde_json::json!({"topic": msg.kind.as_str(), "partition": msg.partition, "offset": msg.offset}),
    );
    ev.ensure_id();
    ev
}

/// Consumes until `shutdown` turns true, then drains what is left on the bus and returns.
pub async fn run(
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    opts: CorrelatorOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<CorrelatorStats, CorrelatorError> {
    let mut consumer: Box<dyn Consumer> =
        soc_bus::with_backoff("subscribe", opts.max_outage, || bus.subscribe(&opts.group, &opts.kinds)).await?;
    let mut stats = CorrelatorStats::default();
    let mut grouper = opts.incidents.clone().map(crate::incidents::Grouper::new);
    let no_correlations = crate::correlation::CorrelationRules::default();
    let corr_rules: &crate::correlation::CorrelationRules = opts.correlations.as_deref().unwrap_or(&no_correlations);
    let mut parts = Partitions::new(opts.checkpoint_dir.clone(), &opts.group, opts.batch)
        .with_max_groups(opts.correlation_max_groups);
    // When the bus last delivered something, and when idle state was last pruned.
    let mut last_record = std::time::Instant::now();
    let mut last_prune = std::time::Instant::now();
    let mut ioc = opts.ioc.as_ref().map(|o| crate::enrich::IocWatcher::new(o.paths.clone(), o.level, o.reload_every));
    if let Some(g) = grouper.as_mut() {
        let mut backoff = Backoff::new(opts.max_outage);
        loop {
            match g.restore(store.as_ref()).await {
                Ok(n) => {
                    tracing::info!(open = n, "incident grouping: open incidents restored from the store");
                    break;
                }
                Err(e) if backoff.retry("restore incidents", &e, e.is_transient()).await => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    tracing::info!(group = %opts.group, bus = bus.name(), store = store.name(), "correlator consuming");
    loop {
        let stopping = *shutdown.borrow();
        let mut phase = std::time::Instant::now();
        let msgs = match consumer.poll(opts.batch, opts.poll_timeout).await {
            Ok(m) => m,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for change in consumer.rebalances() {
            rebalanced(&mut parts, change, corr_rules, &mut stats)?;
        }
        if msgs.is_empty() {
            if stopping {
                break;
            }
            if last_prune.elapsed() >= IDLE_PRUNE_EVERY {
                last_prune = std::time::Instant::now();
                let (w, a) = parts.prune_idle(last_record.elapsed(), corr_rules, opts.dedup.as_ref());
                if w + a > 0 {
                    tracing::debug!(windows = w, alerts = a, "idle: expired correlation windows and alerts pruned");
                    metrics::gauge!("soc_correlator_correlation_windows").set(parts.windows() as f64);
                    metrics::gauge!("soc_correlator_dedup_open_alerts").set(parts.alerts() as f64);
                }
            }
            // Wake early on shutdown.
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
            continue;
        }
        last_record = std::time::Instant::now();
        stats.time.poll_ms += ms_since(&mut phase);
        stats.consumed += msgs.len() as u64;
        if let Some(w) = ioc.as_mut() {
            w.maybe_reload();
        }
        metrics::counter!("soc_correlator_consumed_total").increment(msgs.len() as u64);
        let mut events = Vec::with_capacity(msgs.len());
        let mut found: Vec<(Event, PartKey)> = Vec::new();
        let mut batch_dets = Vec::new();
        for m in &msgs {
            let part = (m.kind, m.partition);
            // Already reflected by the restored state (redelivered after a checkpoint): stored
            // again (idempotent), not detected on again.
            let replayed = parts.begin(part, m.offset, corr_rules);
            if replayed {
                stats.replayed += 1;
            }
            let (ev, dead) = to_event(m);
            if dead {
                if m.kind == Kind::DeadLetter {
                    stats.dead_letters += 1;
                } else {
                    stats.undecodable += 1;
                    metrics::counter!("soc_correlator_undecodable_total").increment(1);
                    tracing::warn!(topic = %m.kind, offset = m.offset, "undecodable record kept as dead_letter");
                }
            }
            let mut ev = ev;
            if let Some(geo) = &opts.geoip {
                crate::enrich::enrich_geoip(geo, &mut ev);
            }
            if let Some(rules) = &opts.sigma {
                rules.normalize(&mut ev); // field mappings per log source (rules/pipelines/)
                if !replayed {
                    rules.evaluate_into(&ev, &mut batch_dets); // only `log` records are evaluated
                }
            }
            if let Some(w) = &ioc
                && !replayed
            {
                w.detect(&ev, &mut batch_dets);
            }
            found.extend(batch_dets.drain(..).map(|d| (d, part)));
            events.push(ev);
        }
        if let Some(rules) = opts.correlations.as_deref().filter(|r| !r.is_empty()) {
            correlate(rules, &mut parts, &events, &mut found);
        }
        let detections: Vec<Event> = match &opts.dedup {
            Some(d) => dedup(d, &mut parts, found, &mut stats),
            None => found.into_iter().map(|(d, _)| d).collect(),
        };
        events.extend(detections.iter().cloned());
        // The partitions' state is final for this batch: its snapshots are serialized now and
        // written in the background while the batch is stored; they become visible (renamed
        // into place) only after the store acknowledged, before the commit.
        let pending = parts.prepare(&msgs, corr_rules);
        stats.time.process_ms += ms_since(&mut phase);
        store_with_retry(store.as_ref(), &events, opts.max_outage).await?;
        stats.time.store_ms += ms_since(&mut phase);
        stats.stored += events.len() as u64;
        stats.batches += 1;
        stats.detections += detections.len() as u64;
        if !detections.is_empty() {
            // After the store, before the commit: a crash in between re-publishes the same
            // detections (same ids), never loses them.
            soc_bus::with_backoff("publish detections", opts.max_outage, || {
                soc_bus::publish_events(bus.as_ref(), &detections)
            })
            .await?;
        }
        if let Some(g) = grouper.as_mut() {
            for ev in &events {
                g.add(ev);
            }
            let mut backoff = Backoff::new(opts.max_outage);
            let changed = loop {
                match g.flush(store.as_ref(), Timestamp::now()).await {
                    Ok(c) => break c,
                    Err(e) if backoff.retry("incident merge", &e, e.is_transient()).await => {}
                    Err(e) => return Err(e.into()),
                }
            };
            if !changed.is_empty() {
                // Store, then publish, then commit: a crash in between regroups the batch's
                // alerts after the restore (the grouper skips alerts already in an incident).
                let records = write_incidents(store.as_ref(), &changed, opts.max_outage).await?;
                soc_bus::with_backoff("publish incidents", opts.max_outage, || {
                    soc_bus::publish_events(bus.as_ref(), &records)
                })
                .await?;
                stats.incident_versions += changed.len() as u64;
                metrics::counter!("soc_correlator_incident_versions_total").increment(changed.len() as u64);
                metrics::gauge!("soc_correlator_open_incidents").set(g.open_incidents() as f64);
            }
        }
        metrics::counter!("soc_correlator_stored_total").increment(events.len() as u64);
        // The state reflecting this batch, before its commit: a crash in between restores it
        // and recognizes the redelivered records.
        stats.time.publish_ms += ms_since(&mut phase);
        checkpoint_with_retry(&mut parts, pending, &msgs, corr_rules, opts.max_outage).await?;
        stats.time.checkpoint_ms += ms_since(&mut phase);
        // Only now is the batch safe: commit.
        commit_with_retry(consumer.as_mut(), &msgs, opts.max_outage).await?;
        stats.time.commit_ms += ms_since(&mut phase);
        metrics::gauge!("soc_correlator_last_event_time_seconds")
            .set(events.iter().map(|e| e.timestamp).max().unwrap_or(Timestamp::from_unix_micros(0)).unix_secs() as f64);
    }
    tracing::info!(?stats, "correlator drained and stopped");
    Ok(stats)
}

/// How often expired state is pruned while the bus is idle.
const IDLE_PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Exponential backoff (100 ms doubling to 10 s) for transient failures, up to `max_outage`.
struct Backoff {
    start: std::time::Instant,
    delay: Duration,
    max_outage: Duration,
}

impl Backoff {
    fn new(max_outage: Duration) -> Self {
        Backoff { start: std::time::Instant::now(), delay: Duration::from_millis(100), max_outage }
    }

    /// Waits before the next try and returns true, or returns false when the error is not
    /// transient or the outage has lasted too long (the caller then gives up).
    async fn retry(&mut self, op: &'static str, error: &(dyn std::fmt::Display + Sync), transient: bool) -> bool {
        if !transient || self.start.elapsed() >= self.max_outage {
            return false;
        }
        metrics::counter!("soc_correlator_retries_total", "op" => op).increment(1);
        tracing::warn!(op, %error, retry_in_ms = self.delay.as_millis() as u64, "failed; retrying (offsets not committed)");
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(10));
        true
    }
}

async fn commit_with_retry(
    consumer: &mut dyn Consumer,
    msgs: &[Message],
    max_outage: Duration,
) -> Result<(), BusError> {
    let mut backoff = Backoff::new(max_outage);
    loop {
        match consumer.commit(msgs).await {
            Ok(()) => return Ok(()),
            Err(e) if backoff.retry("commit", &e, e.is_transient()).await => {}
            Err(e) => return Err(e),
        }
    }
}

/// Finishes the batch's background checkpoint; if it failed, writes the snapshots again (all
/// partitions) until it works or the outage lasts too long.
async fn checkpoint_with_retry(
    parts: &mut Partitions,
    pending: Result<crate::checkpoint::PendingCheckpoint, crate::checkpoint::CheckpointError>,
    msgs: &[Message],
    rules: &crate::correlation::CorrelationRules,
    max_outage: Duration,
) -> Result<(), crate::checkpoint::CheckpointError> {
    let started = std::time::Instant::now();
    let first = match pending {
        Ok(p) => p.finish().await,
        Err(e) => Err(e),
    };
    let mut backoff = Backoff::new(max_outage);
    let mut result = first.map(|_| ());
    while let Err(e) = result {
        // A full or failing disk may recover; the offsets stay uncommitted meanwhile.
        if !backoff.retry("checkpoint", &e, true).await {
            return Err(e);
        }
        parts.mark_all_changed();
        result = parts.checkpoint(msgs, rules).await.map(|_| ());
    }
    metrics::histogram!("soc_correlator_checkpoint_wait_seconds").record(started.elapsed().as_secs_f64());
    Ok(())
}

/// Applies one consumer-group change: revoked partitions are checkpointed and dropped from
/// memory, assigned ones are loaded from their snapshot at their first record.
fn rebalanced(
    parts: &mut Partitions,
    change: soc_bus::Rebalance,
    rules: &crate::correlation::CorrelationRules,
    stats: &mut CorrelatorStats,
) -> Result<(), crate::checkpoint::CheckpointError> {
    match change {
        soc_bus::Rebalance::Revoked(list) => {
            for part in list {
                parts.revoke(part, rules)?;
                stats.partitions_revoked += 1;
            }
        }
        soc_bus::Rebalance::Assigned(list) => {
            for part in list {
                parts.assign(part);
                stats.partitions_assigned += 1;
            }
        }
    }
    metrics::gauge!("soc_correlator_correlation_windows").set(parts.windows() as f64);
    metrics::gauge!("soc_correlator_dedup_open_alerts").set(parts.alerts() as f64);
    Ok(())
}

async fn store_with_retry(store: &dyn Store, events: &[Event], max_outage: Duration) -> Result<(), StoreError> {
    let mut backoff = Backoff::new(max_outage);
    loop {
        match store.insert_events(events).await {
            Ok(()) => return Ok(()),
            Err(e) if backoff.retry("store", &e, e.is_transient()).await => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use soc_bus::{MemoryBus, Record};
    use soc_store::{CountBy, EventQuery, IncidentQuery, RetentionReport};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A store that fails its first `fail` inserts (transiently) and then keeps events by id.
    #[derive(Default)]
    struct FlakyStore {
        fail: AtomicU32,
        rows: Mutex<std::collections::BTreeMap<String, Event>>,
        incidents: Mutex<std::collections::BTreeMap<String, soc_model::Incident>>,
    }

    #[async_trait::async_trait]
    impl Store for FlakyStore {
        async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
            Ok(vec![])
        }
        async fn insert_events(&self, events: &[Event]) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(StoreError::Unavailable { addr: "test".into(), reason: "down".into() });
            }
            let mut r = self.rows.lock().unwrap();
            for e in events {
                r.insert(e.id.clone().ok_or(StoreError::MissingId)?, e.clone());
            }
            Ok(())
        }
        async fn query_events(&self, _q: &EventQuery) -> Result<Vec<Event>, StoreError> {
            Ok(self.rows.lock().unwrap().values().cloned().collect())
        }
        async fn count_events(&self, _q: &EventQuery) -> Result<u64, StoreError> {
            Ok(self.rows.lock().unwrap().len() as u64)
        }
        async fn count_by(&self, _by: CountBy, _q: &EventQuery) -> Result<Vec<(String, u64)>, StoreError> {
            Ok(vec![])
        }
        async fn drop_days_before(&self, _d: i64) -> Result<RetentionReport, StoreError> {
            Ok(RetentionReport::default())
        }
        async fn upsert_incidents(&self, list: &[soc_model::Incident]) -> Result<(), StoreError> {
            let mut m = self.incidents.lock().unwrap();
            for i in list {
                if m.get(&i.incident_id).is_none_or(|old| old.version < i.version) {
                    m.insert(i.incident_id.clone(), i.clone());
                }
            }
            Ok(())
        }
        async fn get_incident(&self, id: &str) -> Result<Option<soc_model::Incident>, StoreError> {
            Ok(self.incidents.lock().unwrap().get(id).cloned())
        }
        async fn query_incidents(&self, _q: &IncidentQuery) -> Result<Vec<soc_model::Incident>, StoreError> {
            Ok(self.incidents.lock().unwrap().values().cloned().collect())
        }
        async fn count_incidents(&self, _q: &IncidentQuery) -> Result<u64, StoreError> {
            Ok(self.incidents.lock().unwrap().len() as u64)
        }
        async fn insert_forwarding(&self, _r: &[Event]) -> Result<(), StoreError> {
            Ok(())
        }
        async fn query_forwarding(&self, _i: Option<&str>, _l: usize) -> Result<Vec<Event>, StoreError> {
            Ok(vec![])
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Ok(())
        }
        fn name(&self) -> &'static str {
            "test"
        }
    }

    fn flow(i: u64) -> Event {
        let mut e = Event::new(EventType::Flow, Timestamp::from_unix_micros(1_600_000_000_000_000 + i as i64));
        e.flow_id = Some(i);
        e
    }

    /// A memory bus (topics created) holding `events`, and an empty store.
    async fn bus_with(events: &[Event]) -> (Arc<MemoryBus>, Arc<FlakyStore>) {
        let bus = Arc::new(MemoryBus::new("t", 1000));
        bus.ensure_topics().await.unwrap();
        if !events.is_empty() {
            soc_bus::publish_events(bus.as_ref(), events).await.unwrap();
        }
        (bus, Arc::new(FlakyStore::default()))
    }

    /// Runs a correlator that is already stopping: it drains what the bus holds and returns.
    async fn drain(
        bus: Arc<dyn Bus>,
        store: &Arc<FlakyStore>,
        opts: CorrelatorOptions,
    ) -> Result<CorrelatorStats, CorrelatorError> {
        let (_tx, rx) = watch::channel(true);
        run(bus, store.clone(), opts, rx).await
    }

    /// Default options with short polls (the buses here are in memory).
    fn quick() -> CorrelatorOptions {
        CorrelatorOptions { poll_timeout: Duration::from_millis(20), ..Default::default() }
    }

    #[tokio::test]
    async fn stores_everything_despite_store_outage_and_keeps_bad_records_as_dead_letters() {
        let events: Vec<Event> = (0..250).map(flow).collect();
        let (bus, store) = bus_with(&events).await;
        store.fail.store(3, Ordering::SeqCst);
        bus.publish(Kind::Log, vec![Record::new("h", b"{not json".to_vec())]).await.unwrap();
        bus.publish(
            Kind::DeadLetter,
            vec![Record::new("h", DeadLetter::new("syslog-udp", "bad PRI", b"<999>x").to_json())],
        )
        .await
        .unwrap();
        let stats = drain(bus.clone(), &store, CorrelatorOptions { batch: 100, ..quick() }).await.unwrap();
        assert_eq!(stats.consumed, 252);
        assert_eq!(stats.undecodable, 1);
        assert_eq!(stats.dead_letters, 1);
        assert_eq!(store.rows.lock().unwrap().len(), 252);
        // All committed: nothing is retained on the bus.
        assert!(bus.depth().values().all(|d| *d == 0), "{:?}", bus.depth());
    }

    #[tokio::test]
    async fn redelivered_records_are_stored_once() {
        let events: Vec<Event> = (0..10).map(flow).collect();
        let (bus, store) = bus_with(&events).await;
        soc_bus::publish_events(bus.as_ref(), &events).await.unwrap(); // a producer retry
        let stats = drain(bus, &store, quick()).await.unwrap();
        assert_eq!(stats.consumed, 20);
        assert_eq!(store.rows.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn alerts_become_incidents_in_the_store_and_on_the_incident_topic() {
        let mut alerts = Vec::new();
        for i in 0..5u64 {
            let mut e = Event::new(EventType::Alert, Timestamp::from_unix_micros(1_600_000_000_000_000 + i as i64));
            e.src_ip = Some("10.1.1.1".into());
            e.dest_ip = Some(format!("203.0.113.{i}"));
            e.alert = Some(soc_model::Alert {
                signature_id: Some(1000 + i),
                signature: Some("test".into()),
                severity: Some(2),
                ..Default::default()
            });
            alerts.push(e);
        }
        let (bus, store) = bus_with(&alerts).await;
        let mut incident_sub = bus.subscribe("forwarder", &[Kind::Incident]).await.unwrap();
        let stats = drain(bus.clone(), &store, CorrelatorOptions { batch: 2, ..quick() }).await.unwrap();
        let incidents = store.incidents.lock().unwrap().clone();
        assert_eq!(incidents.len(), 1, "{incidents:?}");
        let inc = incidents.values().next().unwrap();
        assert_eq!(inc.alert_count, 5);
        assert_eq!(inc.version, 3, "batches of 2: three versions");
        assert_eq!(stats.incident_versions, 3);
        let published = incident_sub.poll(100, Duration::from_millis(100)).await.unwrap();
        assert_eq!(published.len(), 3);
        let last = Event::from_json(&published[2].payload).unwrap();
        assert_eq!(last.incident.as_ref().map(|i| i.version), Some(3));
    }

    #[tokio::test]
    async fn ioc_hits_become_detections_that_open_incidents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ip.txt"), "203.0.113.66\n").unwrap();
        let mut hit = flow(1);
        hit.dest_ip = Some("203.0.113.66".into());
        let (bus, store) = bus_with(&[flow(0), hit]).await;
        let opts = CorrelatorOptions { ioc: Some(ioc_lists(dir.path())), ..quick() };
        let stats = drain(bus, &store, opts).await.unwrap();
        assert_eq!(stats.detections, 1);
        let rows = store.rows.lock().unwrap();
        let det: Vec<&Event> = rows.values().filter(|e| e.event_type == EventType::Detection).collect();
        assert_eq!(det.len(), 1);
        assert_eq!(det[0].detection.as_ref().map(|d| d.engine.as_str()), Some("ioc"));
        let incidents = store.incidents.lock().unwrap();
        assert_eq!(incidents.len(), 1);
        assert!(incidents.values().next().unwrap().entities.contains(&"ip:203.0.113.66".to_string()));
    }

    #[tokio::test]
    async fn correlation_rules_turn_base_matches_into_one_detection() {
        let yaml = "title: Burst\nid: corr-burst\ncorrelation:\n  type: event_count\n  rules: [failed]\n  group-by: [TargetUserName]\n  timespan: 10m\n  condition: {gte: 3}\nlevel: high\n---\ntitle: Failed\nid: base-failed\nname: failed\nlogsource: {product: windows, service: security}\ndetection: {s: {EventID: 4625}, condition: s}\nlevel: low\n";
        let logs: Vec<Event> = (0..3).map(|i| failed_logon(i, "admin", "203.0.113.9")).collect();
        let (bus, store) = bus_with(&logs).await;
        drain(bus, &store, rules_opts(yaml, None)).await.unwrap();
        let rows = store.rows.lock().unwrap();
        let dets: Vec<&soc_model::Detection> = rows.values().filter_map(|e| e.detection.as_ref()).collect();
        assert_eq!(dets.len(), 1, "base matches only feed the correlation: {dets:?}");
        assert_eq!((dets[0].engine.as_str(), dets[0].rule_id.as_str()), ("sigma-correlation", "corr-burst"));
        assert_eq!(dets[0].evidence.len(), 3);
    }

    fn failed_logon(i: i64, user: &str, ip: &str) -> Event {
        let mut e = Event::new(EventType::Log, Timestamp::from_unix_micros(1_600_000_000_000_000 + i * 1_000_000));
        e.host = Some("dc01".into());
        let mut l = soc_model::Log {
            logsource: soc_model::LogSource {
                product: Some("windows".into()),
                service: Some("security".into()),
                category: None,
            },
            ..Default::default()
        };
        l.fields.insert("EventID".into(), serde_json::json!(4625));
        l.fields.insert("TargetUserName".into(), serde_json::json!(user));
        l.fields.insert("IpAddress".into(), serde_json::json!(ip));
        e.log = Some(l);
        e
    }

    const SPRAY: &str = "title: Spray\nid: corr-spray\ncorrelation:\n  type: value_count\n  rules: [failed]\n  group-by: [IpAddress]\n  timespan: 10m\n  condition: {gte: 6, field: TargetUserName}\nlevel: high\n---\ntitle: Failed\nid: base-failed\nname: failed\nlogsource: {product: windows, service: security}\ndetection: {s: {EventID: 4625}, condition: s}\nlevel: low\n";

    /// Options with the Sigma and correlation rules of `yaml`, checkpointed to `checkpoint`.
    fn rules_opts(yaml: &str, checkpoint: Option<std::path::PathBuf>) -> CorrelatorOptions {
        let (sigma, _) = crate::SigmaRules::from_sources([("r.yml", yaml)]);
        let (corr, errs) = crate::correlation::CorrelationRules::from_sources(&[("r.yml".into(), yaml.to_string())]);
        assert!(errs.is_empty(), "{errs:?}");
        CorrelatorOptions {
            sigma: Some(Arc::new(sigma)),
            correlations: Some(Arc::new(corr)),
            checkpoint_dir: checkpoint,
            ..quick()
        }
    }

    fn spray_opts(checkpoint: Option<std::path::PathBuf>) -> CorrelatorOptions {
        rules_opts(SPRAY, checkpoint)
    }

    /// IOC lists read from `dir`, hits at level high.
    fn ioc_lists(dir: &std::path::Path) -> IocOptions {
        IocOptions {
            paths: vec![dir.to_path_buf()],
            level: soc_model::Level::High,
            reload_every: Duration::from_secs(5),
        }
    }

    /// One failed logon from 203.0.113.9 per user `user{i}`, second `i`.
    fn users(range: std::ops::Range<i64>) -> Vec<Event> {
        range.map(|i| failed_logon(i, &format!("user{i}"), "203.0.113.9")).collect()
    }

    fn sprays(store: &FlakyStore) -> usize {
        store
            .rows
            .lock()
            .unwrap()
            .values()
            .filter(|e| e.detection.as_ref().is_some_and(|d| d.rule_id == "corr-spray"))
            .count()
    }

    /// Half of a spray, a restart (a new `run` on the same bus and checkpoint directory), the
    /// other half: the correlation fires once. In memory only, the first half is forgotten.
    async fn spray_across_restart(checkpoint: Option<std::path::PathBuf>) -> usize {
        let (bus, store) = bus_with(&users(0..3)).await;
        drain(bus.clone(), &store, spray_opts(checkpoint.clone())).await.unwrap();
        assert_eq!(sprays(&store), 0, "three users: not yet a spray");
        soc_bus::publish_events(bus.as_ref(), &users(3..6)).await.unwrap();
        drain(bus, &store, spray_opts(checkpoint)).await.unwrap();
        sprays(&store)
    }

    #[tokio::test]
    async fn correlation_windows_survive_a_restart_through_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(spray_across_restart(Some(dir.path().to_path_buf())).await, 1);
        assert!(dir.path().join("soc-correlator/log-0.json").is_file());
        assert_eq!(spray_across_restart(None).await, 0, "without the checkpoint the first half is lost");
    }

    /// A consumer whose commits fail for good: the correlator stops after the checkpoint,
    /// before the commit (a crash at the worst moment).
    struct NoCommit(Box<dyn Consumer>);

    #[async_trait::async_trait]
    impl Consumer for NoCommit {
        async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
            self.0.poll(max, timeout).await
        }
        async fn commit(&mut self, _done: &[Message]) -> Result<(), BusError> {
            Err(BusError::Closed)
        }
    }

    /// A memory bus whose consumers are wrapped by the function (failing commits, rebalances).
    struct Wrapped(Arc<MemoryBus>, fn(Box<dyn Consumer>) -> Box<dyn Consumer>);

    #[async_trait::async_trait]
    impl Bus for Wrapped {
        async fn ensure_topics(&self) -> Result<(), BusError> {
            self.0.ensure_topics().await
        }
        async fn publish(&self, kind: Kind, records: Vec<Record>) -> Result<(), BusError> {
            self.0.publish(kind, records).await
        }
        async fn subscribe(&self, group: &str, kinds: &[Kind]) -> Result<Box<dyn Consumer>, BusError> {
            Ok((self.1)(self.0.subscribe(group, kinds).await?))
        }
        fn name(&self) -> &'static str {
            "wrapped"
        }
    }

    #[tokio::test]
    async fn records_redelivered_after_a_checkpoint_are_not_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        // Three distinct users, then the same three again: never six distinct users.
        let (bus, store) = bus_with(&users(0..3)).await;
        let no_commit = Arc::new(Wrapped(bus.clone(), |c| Box::new(NoCommit(c))));
        let crashed = drain(no_commit, &store, spray_opts(Some(dir.path().into()))).await;
        assert!(matches!(crashed, Err(CorrelatorError::Bus(BusError::Closed))), "{crashed:?}");
        // Restart: the three records come again (uncommitted), then three new users.
        soc_bus::publish_events(bus.as_ref(), &users(3..6)).await.unwrap();
        let stats = drain(bus, &store, spray_opts(Some(dir.path().into()))).await.unwrap();
        assert_eq!(stats.replayed, 3);
        assert_eq!(stats.consumed, 6);
        assert_eq!(sprays(&store), 1, "six distinct users: one spray");
    }

    /// A consumer whose partition is revoked and assigned again (another member had it
    /// meanwhile) between its first and second poll.
    struct Rebalancing {
        inner: Box<dyn Consumer>,
        polls: u32,
        changes: Vec<soc_bus::Rebalance>,
    }

    #[async_trait::async_trait]
    impl Consumer for Rebalancing {
        async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
            self.polls += 1;
            if self.polls == 2 {
                self.changes.push(soc_bus::Rebalance::Revoked(vec![(Kind::Log, 0)]));
                self.changes.push(soc_bus::Rebalance::Assigned(vec![(Kind::Log, 0)]));
            }
            self.inner.poll(max, timeout).await
        }
        async fn commit(&mut self, done: &[Message]) -> Result<(), BusError> {
            self.inner.commit(done).await
        }
        fn rebalances(&mut self) -> Vec<soc_bus::Rebalance> {
            std::mem::take(&mut self.changes)
        }
    }

    /// Half a spray, the partition revoked (its state dropped from memory) and assigned again,
    /// the other half: the spray is seen when the state comes back from the checkpoint.
    async fn spray_across_rebalance(checkpoint: Option<std::path::PathBuf>) -> (usize, CorrelatorStats) {
        let (bus, store) = bus_with(&users(0..6)).await;
        let rebalancing =
            Arc::new(Wrapped(bus, |inner| Box::new(Rebalancing { inner, polls: 0, changes: Vec::new() })));
        let stats = drain(rebalancing, &store, CorrelatorOptions { batch: 3, ..spray_opts(checkpoint) }).await.unwrap();
        (sprays(&store), stats)
    }

    #[tokio::test]
    async fn a_revoked_partition_leaves_memory_and_its_state_returns_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (n, stats) = spray_across_rebalance(Some(dir.path().to_path_buf())).await;
        assert_eq!((stats.partitions_revoked, stats.partitions_assigned), (1, 1));
        assert_eq!(n, 1, "the first three users came back with the partition");
        let (n, _) = spray_across_rebalance(None).await;
        assert_eq!(n, 0, "without a checkpoint the revoked partition's windows are gone");
    }

    fn ioc_flow(i: i64, dest: &str) -> Event {
        let mut e = flow(i as u64);
        e.timestamp = Timestamp::from_unix_micros(1_600_000_000_000_000 + i * 1_000_000);
        e.src_ip = Some("10.0.0.5".into());
        e.dest_ip = Some(dest.into());
        e
    }

    #[tokio::test]
    async fn repeated_alerts_are_one_alert_whose_stored_version_has_the_total_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ip.txt"), "203.0.113.66\n203.0.113.77\n").unwrap();
        // 25 hits on one IOC from one host, 1 on another, then one more after the window.
        let mut evs: Vec<Event> = (0..25).map(|i| ioc_flow(i, "203.0.113.66")).collect();
        evs.push(ioc_flow(30, "203.0.113.77"));
        evs.push(ioc_flow(1000, "203.0.113.66"));
        let (bus, store) = bus_with(&evs).await;
        let mut det_sub = bus.subscribe("alerting", &[Kind::Detection]).await.unwrap();
        let opts = CorrelatorOptions {
            batch: 10,
            ioc: Some(ioc_lists(dir.path())),
            dedup: Some(crate::dedup::DedupOptions { window: Duration::from_secs(300), ..Default::default() }),
            ..quick()
        };
        let stats = drain(bus.clone(), &store, opts).await.unwrap();
        assert_eq!(stats.suppressed, 24);
        let rows: Vec<Event> = store.rows.lock().unwrap().values().cloned().collect();
        let mut counts: Vec<(String, u64)> = rows
            .iter()
            .filter_map(|e| {
                let d = e.detection.as_ref()?;
                Some((e.dest_ip.clone()?, d.extra.get("count")?.as_u64()?))
            })
            .collect();
        counts.sort();
        assert_eq!(
            counts,
            vec![("203.0.113.66".into(), 1), ("203.0.113.66".into(), 25), ("203.0.113.77".into(), 1)],
            "one alert of 25 (its last version), one of 1, and a new one after the window"
        );
        // Batches of 10 records: the alert grew in each of the three batches and is re-emitted
        // once per batch (counts 10, 20, 25), not once per folded detection.
        assert_eq!(stats.alert_updates, 3);
        let published = det_sub.poll(100, Duration::from_millis(100)).await.unwrap();
        assert_eq!(published.len(), 3 + 3);
        let counts: Vec<u64> = published
            .iter()
            .filter_map(|m| Event::from_json(&m.payload).ok())
            .filter_map(|e| e.detection?.extra.get("count")?.as_u64())
            .collect();
        assert_eq!(counts, vec![1, 10, 20, 1, 1, 25], "per batch: new alerts, then the updates");
        let incidents = store.incidents.lock().unwrap();
        let total: u64 = incidents.values().map(|i| i.alert_count).sum();
        assert_eq!(total, 3, "updates of an alert are not new alerts for incidents");
    }
}
