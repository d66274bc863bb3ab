//! The consume -> process -> store -> commit loop.

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
}

#[derive(Debug, thiserror::Error)]
pub enum CorrelatorError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Feeds the Sigma detections of a batch (with the log records that triggered them) to the
/// correlation windows; adds the correlation detections and drops the base detections that
/// only feed correlations (Sigma's `generate: false`).
fn correlate(
    rules: &crate::correlation::CorrelationRules,
    windows: &mut crate::correlation::CorrelationState,
    events: &[Event],
    detections: &mut Vec<Event>,
) {
    // Only the Sigma detections some correlation uses; the batch's logs are indexed only then.
    let inputs: Vec<&Event> = detections
        .iter()
        .filter(|d| {
            d.detection.as_ref().is_some_and(|x| x.engine == crate::sigma::ENGINE_NAME && rules.uses(&x.rule_id))
        })
        .collect();
    if inputs.is_empty() {
        return;
    }
    let logs: std::collections::HashMap<&str, &Event> =
        events.iter().filter(|e| e.event_type == EventType::Log).filter_map(|e| Some((e.id.as_deref()?, e))).collect();
    let mut fired = Vec::new();
    for d in inputs {
        let first = d.detection.as_ref().and_then(|x| x.evidence.first());
        if let Some(log) = first.and_then(|id| logs.get(id.as_str())) {
            windows.observe(rules, d, log, &mut fired);
        }
    }
    detections.retain(|d| {
        !d.detection.as_ref().is_some_and(|x| x.engine == crate::sigma::ENGINE_NAME && rules.suppresses(&x.rule_id))
    });
    detections.extend(fired);
    metrics::gauge!("soc_correlator_correlation_windows").set(windows.len() as f64);
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
    let mut windows = crate::correlation::CorrelationState::default();
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
        let msgs = match consumer.poll(opts.batch, opts.poll_timeout).await {
            Ok(m) => m,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if msgs.is_empty() {
            if stopping {
                break;
            }
            // Wake early on shutdown.
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
            continue;
        }
        stats.consumed += msgs.len() as u64;
        if let Some(w) = ioc.as_mut() {
            w.maybe_reload();
        }
        metrics::counter!("soc_correlator_consumed_total").increment(msgs.len() as u64);
        let mut events = Vec::with_capacity(msgs.len());
        let mut detections = Vec::new();
        for m in &msgs {
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
                rules.evaluate_into(&ev, &mut detections); // only `log` records are evaluated
            }
            if let Some(w) = &ioc {
                w.detect(&ev, &mut detections);
            }
            events.push(ev);
        }
        if let Some(rules) = opts.correlations.as_deref().filter(|r| !r.is_empty()) {
            correlate(rules, &mut windows, &events, &mut detections);
        }
        events.extend(detections.iter().cloned());
        store_with_retry(store.as_ref(), &events, opts.max_outage).await?;
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
        // Only now is the batch safe: commit.
        commit_with_retry(consumer.as_mut(), &msgs, opts.max_outage).await?;
        metrics::gauge!("soc_correlator_last_event_time_seconds")
            .set(events.iter().map(|e| e.timestamp).max().unwrap_or(Timestamp::from_unix_micros(0)).unix_secs() as f64);
    }
    tracing::info!(?stats, "correlator drained and stopped");
    Ok(stats)
}

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

    #[tokio::test]
    async fn stores_everything_despite_store_outage_and_keeps_bad_records_as_dead_letters() {
        let bus = Arc::new(MemoryBus::new("t", 1000));
        bus.ensure_topics().await.unwrap();
        let store = Arc::new(FlakyStore::default());
        store.fail.store(3, Ordering::SeqCst);
        let events: Vec<Event> = (0..250).map(flow).collect();
        soc_bus::publish_events(bus.as_ref(), &events).await.unwrap();
        bus.publish(Kind::Log, vec![Record::new("h", b"{not json".to_vec())]).await.unwrap();
        bus.publish(
            Kind::DeadLetter,
            vec![Record::new("h", DeadLetter::new("syslog-udp", "bad PRI", b"<999>x").to_json())],
        )
        .await
        .unwrap();
        let (tx, rx) = watch::channel(true); // already stopping: drain and return
        let opts = CorrelatorOptions { batch: 100, poll_timeout: Duration::from_millis(20), ..Default::default() };
        let stats = run(bus.clone(), store.clone(), opts, rx).await.unwrap();
        drop(tx);
        assert_eq!(stats.consumed, 252);
        assert_eq!(stats.undecodable, 1);
        assert_eq!(stats.dead_letters, 1);
        assert_eq!(store.rows.lock().unwrap().len(), 252);
        // All committed: nothing is retained on the bus.
        assert!(bus.depth().values().all(|d| *d == 0), "{:?}", bus.depth());
    }

    #[tokio::test]
    async fn redelivered_records_are_stored_once() {
        let bus = Arc::new(MemoryBus::new("t", 1000));
        bus.ensure_topics().await.unwrap();
        let store = Arc::new(FlakyStore::default());
        let events: Vec<Event> = (0..10).map(flow).collect();
        soc_bus::publish_events(bus.as_ref(), &events).await.unwrap();
        soc_bus::publish_events(bus.as_ref(), &events).await.unwrap(); // a producer retry
        let (_tx, rx) = watch::channel(true);
        let stats = run(
            bus,
            store.clone(),
            CorrelatorOptions { poll_timeout: Duration::from_millis(20), ..Default::default() },
            rx,
        )
        .await
        .unwrap();
        assert_eq!(stats.consumed, 20);
        assert_eq!(store.rows.lock().unwrap().len(), 10);
    }

    #[tokio::test]
    async fn alerts_become_incidents_in_the_store_and_on_the_incident_topic() {
        let bus = Arc::new(MemoryBus::new("t", 1000));
        bus.ensure_topics().await.unwrap();
        let store = Arc::new(FlakyStore::default());
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
        soc_bus::publish_events(bus.as_ref(), &alerts).await.unwrap();
        let mut incident_sub = bus.subscribe("forwarder", &[Kind::Incident]).await.unwrap();
        let (_tx, rx) = watch::channel(true);
        let opts = CorrelatorOptions { batch: 2, poll_timeout: Duration::from_millis(20), ..Default::default() };
        let stats = run(bus.clone(), store.clone(), opts, rx).await.unwrap();
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
        let bus = Arc::new(MemoryBus::new("t", 1000));
        bus.ensure_topics().await.unwrap();
        let store = Arc::new(FlakyStore::default());
        let mut hit = flow(1);
        hit.dest_ip = Some("203.0.113.66".into());
        soc_bus::publish_events(bus.as_ref(), &[flow(0), hit]).await.unwrap();
        let (_tx, rx) = watch::channel(true);
        let opts = CorrelatorOptions {
            poll_timeout: Duration::from_millis(20),
            ioc: Some(IocOptions {
                paths: vec![dir.path().to_path_buf()],
                level: soc_model::Level::High,
                reload_every: Duration::from_secs(5),
            }),
            ..Default::default()
        };
        let stats = run(bus, store.clone(), opts, rx).await.unwrap();
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
        let (sigma, _) = crate::SigmaRules::from_sources([("r.yml", yaml)]);
        let (corr, errs) = crate::correlation::CorrelationRules::from_sources(&[("r.yml".into(), yaml.to_string())]);
        assert!(errs.is_empty(), "{errs:?}");
        let bus = Arc::new(MemoryBus::new("t", 1000));
        bus.ensure_topics().await.unwrap();
        let store = Arc::new(FlakyStore::default());
        let logs: Vec<Event> = (0..3)
            .map(|i| {
                let mut e =
                    Event::new(EventType::Log, Timestamp::from_unix_micros(1_600_000_000_000_000 + i * 1_000_000));
                e.host = Some("dc01".into());
                let mut l = soc_model::Log::default();
                l.logsource = soc_model::LogSource {
                    product: Some("windows".into()),
                    service: Some("security".into()),
                    category: None,
                };
                l.fields.insert("EventID".into(), serde_json::json!(4625));
                l.fields.insert("TargetUserName".into(), serde_json::json!("admin"));
                e.log = Some(l);
                e
            })
            .collect();
        soc_bus::publish_events(bus.as_ref(), &logs).await.unwrap();
        let (_tx, rx) = watch::channel(true);
        let opts = CorrelatorOptions {
            poll_timeout: Duration::from_millis(20),
            sigma: Some(Arc::new(sigma)),
            correlations: Some(Arc::new(corr)),
            ..Default::default()
        };
        run(bus, store.clone(), opts, rx).await.unwrap();
        let rows = store.rows.lock().unwrap();
        let dets: Vec<&soc_model::Detection> = rows.values().filter_map(|e| e.detection.as_ref()).collect();
        assert_eq!(dets.len(), 1, "base matches only feed the correlation: {dets:?}");
        assert_eq!((dets[0].engine.as_str(), dets[0].rule_id.as_str()), ("sigma-correlation", "corr-burst"));
        assert_eq!(dets[0].evidence.len(), 3);
    }
}
