//! The NCSC forwarder: incidents leave as STIX 2.1 bundles over TAXII 2.1, exactly once, and
//! every step is recorded.
//!
//! ```text
//! bus (incident topic, group soc-forwarder) -> policy -> redaction -> STIX bundle -> outbox
//!     (commit the offset only after the outbox write)
//! outbox -> sender: add objects -> poll status -> confirmed | failed (retry with backoff) | rejected
//! every state change -> Store::insert_forwarding (the dashboard's audit view)
//! ```
//!
//! Exactly once: a bundle's ids are deterministic and the incident's `modified` is its
//! version time, so a re-send after a lost response carries the very objects the server
//! already has. A TAXII server refuses an object whose id and version it holds (medallion:
//! "Unable to process object"); such a failure is checked against the collection's versions
//! of that object and counts as delivered when the version is there.
#![forbid(unsafe_code)]

pub mod config;
pub mod inbound;
pub mod outbox;
pub mod policy;
pub mod redact;
pub mod stix;
pub mod taxii;

use outbox::{Backoff, Entry, Outbox, OutboxError};
use policy::{Decision, Policy};
use redact::Redaction;
use serde_json::Value;
use soc_bus::{Bus, BusError};
use soc_model::{Event, EventType, ForwardState, Forwarding, Incident, Kind, Timestamp};
use soc_store::Store;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stix::BundleOptions;
use taxii::{ClientOptions, Status, TaxiiClient, TaxiiError};
use tokio::sync::watch;

pub use stix::incident_bundle;

/// The bundle the project sends for an incident version (policy aside): redacted, then
/// converted. This is what `GET /api/incidents/{id}/stix` serves.
pub fn outgoing_bundle(incident: &Incident, redaction: &Redaction, opts: &BundleOptions) -> Value {
    stix::incident_bundle(&redaction.incident(incident), opts)
}

/// Forwarder failures that stop it.
#[derive(Debug, thiserror::Error)]
pub enum ForwarderError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Taxii(#[from] TaxiiError),
}

/// Everything the forwarder needs.
#[derive(Clone, Debug)]
pub struct ForwarderOptions {
    /// The TAXII collection's objects URL (no credentials in it).
    pub destination: String,
    pub client: ClientOptions,
    pub bundle: BundleOptions,
    pub policy: Policy,
    pub redaction: Redaction,
    pub outbox_path: std::path::PathBuf,
    pub backoff: Backoff,
    /// How long one send waits for a pending status before polling it again later.
    pub status_wait: Duration,
    /// Consumer group on the incident topic.
    pub group: String,
}

impl ForwarderOptions {
    pub fn new(destination: impl Into<String>, outbox_path: impl Into<std::path::PathBuf>) -> Self {
        ForwarderOptions {
            destination: destination.into(),
            client: ClientOptions::default(),
            bundle: BundleOptions::default(),
            policy: Policy::default(),
            redaction: Redaction::default(),
            outbox_path: outbox_path.into(),
            backoff: Backoff::default(),
            status_wait: Duration::from_secs(30),
            group: "soc-forwarder".into(),
        }
    }
}

/// The forwarder: policy, outbox, sender, audit.
pub struct Forwarder {
    opts: ForwarderOptions,
    api_root: String,
    client: TaxiiClient,
    outbox: Outbox,
    store: Option<Arc<dyn Store>>,
    /// Object versions known to be on the server: `(id, version or "")`.
    present: Mutex<HashSet<(String, String)>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("destination", &self.opts.destination)
            .field("client", &self.client)
            .field("outbox", &self.outbox)
            .finish()
    }
}

/// What one sender pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendStats {
    pub confirmed: u64,
    pub failed: u64,
    pub rejected: u64,
    pub pending: u64,
}

/// Totals of a [`run`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub consumed: u64,
    pub incidents: u64,
    pub undecodable: u64,
}

fn normalize_version(v: &str) -> String {
    match v.parse::<Timestamp>() {
        Ok(t) => t.unix_micros().to_string(),
        Err(_) => v.to_string(),
    }
}

fn object_version(o: &Value) -> String {
    o.get("modified").and_then(Value::as_str).map(normalize_version).unwrap_or_default()
}

impl Forwarder {
    pub fn new(opts: ForwarderOptions, store: Option<Arc<dyn Store>>) -> Result<Self, ForwarderError> {
        taxii::check_url(&opts.destination)?;
        let api_root = taxii::api_root_of(&opts.destination)?;
        let client = TaxiiClient::new(&opts.client)?;
        let outbox = Outbox::open(&opts.outbox_path, opts.backoff)?;
        Ok(Forwarder { opts, api_root, client, outbox, store, present: Mutex::new(HashSet::new()) })
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
    pub fn client(&self) -> &TaxiiClient {
        &self.client
    }
    /// The bundle this forwarder sends for an incident version (its redaction and bundle
    /// options applied): what `GET /api/incidents/{id}/stix` shows.
    pub fn bundle_for(&self, incident: &Incident) -> Value {
        outgoing_bundle(incident, &self.opts.redaction, &self.opts.bundle)
    }

    pub fn destination(&self) -> &str {
        &self.opts.destination
    }

    /// Writes an audit record to the store (when there is one); a failure is logged and
    /// counted, the outbox stays the source of truth.
    async fn record(&self, incident_id: &str, version: u64, state: ForwardState, attempt: u32, entry: Extra<'_>) {
        metrics::counter!("soc_forwarder_transitions_total", "state" => state.as_str()).increment(1);
        let Some(store) = &self.store else { return };
        let mut ev = Event::new(EventType::Forwarding, Timestamp::now());
        ev.forwarding = Some(Forwarding {
            incident_id: incident_id.to_string(),
            incident_version: version,
            state,
            destination: self.opts.destination.clone(),
            attempt,
            bundle_id: entry.bundle_id.map(String::from),
            status_id: entry.status_id.map(String::from),
            reason: entry.reason.map(String::from),
            extra: Default::default(),
        });
        ev.ensure_id();
        if let Err(e) = store.insert_forwarding(&[ev]).await {
            metrics::counter!("soc_forwarder_audit_errors_total").increment(1);
            tracing::warn!(error = %e, incident_id, version, state = state.as_str(), "forwarding record not stored");
        }
    }

    /// Takes one incident version: policy, redaction, bundle, outbox, audit. Returns the
    /// state it got (or `None` when that version was already in the outbox).
    pub async fn accept(&self, incident: &Incident) -> Result<Option<ForwardState>, ForwarderError> {
        let id = &incident.incident_id;
        let shared = self.outbox.shared(id)?;
        let approved = self.outbox.approved(id)?;
        let (state, reason) = match self.opts.policy.decide(incident, shared, approved) {
            Decision::Send => (ForwardState::Queued, None),
            Decision::AwaitApproval => (ForwardState::AwaitingApproval, Some("manual approval required".to_string())),
            Decision::Skip(r) => (ForwardState::Skipped, Some(r)),
        };
        let bundle = outgoing_bundle(incident, &self.opts.redaction, &self.opts.bundle);
        let bundle_id = bundle.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let text = bundle.to_string();
        let Some(superseded) =
            self.outbox.enqueue(id, incident.version, state, &bundle_id, &text, reason.as_deref())?
        else {
            return Ok(None);
        };
        // A late older version is stored as skipped: report what the outbox holds.
        let (state, reason) = match self.outbox.entries(id)?.into_iter().find(|e| e.version == incident.version) {
            Some(e) => (e.state, e.reason),
            None => (state, reason),
        };
        metrics::counter!("soc_forwarder_incidents_total", "decision" => state.as_str()).increment(1);
        tracing::debug!(incident_id = %id, version = incident.version, state = state.as_str(), "incident version queued");
        for v in superseded {
            let why = format!("superseded by version {}", incident.version);
            self.record(id, v, ForwardState::Skipped, 0, Extra { reason: Some(&why), ..Default::default() }).await;
        }
        self.record(
            id,
            incident.version,
            state,
            0,
            Extra { bundle_id: Some(&bundle_id), reason: reason.as_deref(), ..Default::default() },
        )
        .await;
        Ok(Some(state))
    }

    /// Sends (or re-polls) due entries, up to `limit`, stopping at the first transient
    /// failure. Returns what happened.
    pub async fn send_due(&self, limit: usize) -> Result<SendStats, ForwarderError> {
        let mut stats = SendStats::default();
        for e in self.outbox.due(Timestamp::now().unix_micros(), limit)? {
            match self.deliver(&e).await? {
                ForwardState::Confirmed => stats.confirmed += 1,
                ForwardState::Failed => {
                    // The server is unreachable or failing: the rest of the pass would only
                    // fail the same way; it waits for the next pass.
                    stats.failed += 1;
                    break;
                }
                ForwardState::Rejected => stats.rejected += 1,
                _ => stats.pending += 1,
            }
        }
        Ok(stats)
    }

    async fn deliver(&self, e: &Entry) -> Result<ForwardState, ForwarderError> {
        let ids = Extra { bundle_id: Some(&e.bundle_id), ..Default::default() };
        // A send whose status was pending: poll it again.
        if e.state == ForwardState::Sent
            && let Some(sid) = &e.status_id
        {
            return match self.client.status(&self.api_root, sid).await {
                Ok(st) => self.finish(e, e.attempts, st).await,
                Err(err) => {
                    // A status the server lost (restart) or cannot give: send again; the
                    // server recognises what it already holds.
                    let reason = format!("status {sid}: {err}");
                    let d = self.outbox.mark_failed(&e.incident_id, e.version, e.attempts, &reason)?;
                    tracing::warn!(incident_id = %e.incident_id, version = e.version, retry_in = ?d, reason = %reason, "status poll failed; will send again");
                    self.record(
                        &e.incident_id,
                        e.version,
                        ForwardState::Failed,
                        e.attempts,
                        Extra { reason: Some(&reason), ..ids },
                    )
                    .await;
                    Ok(ForwardState::Failed)
                }
            };
        }
        let attempt = self.outbox.begin_attempt(&e.incident_id, e.version)?;
        let bundle: Value = match serde_json::from_str(&e.bundle) {
            Ok(v) => v,
            Err(err) => {
                let reason = format!("stored bundle is not JSON: {err}");
                self.outbox.mark_rejected(&e.incident_id, e.version, &reason)?;
                self.record(
                    &e.incident_id,
                    e.version,
                    ForwardState::Rejected,
                    attempt,
                    Extra { reason: Some(&reason), ..ids },
                )
                .await;
                return Ok(ForwardState::Rejected);
            }
        };
        let envelope = serde_json::json!({ "objects": bundle.get("objects").cloned().unwrap_or(Value::Array(vec![])) });
        metrics::counter!("soc_forwarder_sends_total").increment(1);
        match self.client.add_objects(&self.opts.destination, &envelope).await {
            Ok(st) => {
                self.outbox.mark_sent(&e.incident_id, e.version, &st.id, self.opts.status_wait)?;
                self.record(
                    &e.incident_id,
                    e.version,
                    ForwardState::Sent,
                    attempt,
                    Extra { status_id: Some(&st.id), ..ids },
                )
                .await;
                let st = match self.client.wait_status(&self.api_root, st, self.opts.status_wait).await {
                    Ok(st) => st,
                    Err(err) => {
                        tracing::warn!(incident_id = %e.incident_id, error = %err, "status poll failed; will poll again");
                        return Ok(ForwardState::Sent);
                    }
                };
                self.finish(e, attempt, st).await
            }
            Err(err) => self.refused(e, attempt, err).await,
        }
    }

    async fn refused(&self, e: &Entry, attempt: u32, err: TaxiiError) -> Result<ForwardState, ForwarderError> {
        let reason = err.to_string();
        let ids = Extra { bundle_id: Some(&e.bundle_id), reason: Some(&reason), ..Default::default() };
        if err.is_transient() {
            let d = self.outbox.mark_failed(&e.incident_id, e.version, attempt, &reason)?;
            metrics::counter!("soc_forwarder_send_failures_total", "kind" => "transient").increment(1);
            tracing::warn!(incident_id = %e.incident_id, version = e.version, attempt, retry_in = ?d, reason = %reason, "send failed; will retry");
            self.record(&e.incident_id, e.version, ForwardState::Failed, attempt, ids).await;
            Ok(ForwardState::Failed)
        } else {
            self.outbox.mark_rejected(&e.incident_id, e.version, &reason)?;
            metrics::counter!("soc_forwarder_send_failures_total", "kind" => "rejected").increment(1);
            tracing::error!(incident_id = %e.incident_id, version = e.version, attempt, reason = %reason, "server refused the bundle; not retrying");
            self.record(&e.incident_id, e.version, ForwardState::Rejected, attempt, ids).await;
            Ok(ForwardState::Rejected)
        }
    }

    /// Whether the collection holds `id` at `version` (any version when `version` is empty).
    async fn holds(&self, id: &str, version: &str) -> Result<bool, TaxiiError> {
        let key = (id.to_string(), version.to_string());
        if self.present.lock().map(|p| p.contains(&key)).unwrap_or(false) {
            return Ok(true);
        }
        let versions = self.client.object_versions(&self.opts.destination, id).await?;
        let found =
            !versions.is_empty() && (version.is_empty() || versions.iter().any(|v| normalize_version(v) == version));
        if found && let Ok(mut p) = self.present.lock() {
            p.insert(key);
        }
        Ok(found)
    }

    async fn finish(&self, e: &Entry, attempt: u32, st: Status) -> Result<ForwardState, ForwarderError> {
        let ids = Extra { bundle_id: Some(&e.bundle_id), status_id: Some(&st.id), ..Default::default() };
        if !st.is_complete() {
            self.outbox.mark_sent(&e.incident_id, e.version, &st.id, self.opts.status_wait)?;
            return Ok(ForwardState::Sent);
        }
        let bundle: Value = serde_json::from_str(&e.bundle).unwrap_or(Value::Null);
        let versions: std::collections::HashMap<String, String> = bundle
            .get("objects")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|o| Some((o.get("id")?.as_str()?.to_string(), object_version(o)))).collect())
            .unwrap_or_default();
        if let Ok(mut p) = self.present.lock() {
            for s in &st.successes {
                p.insert((s.id.clone(), versions.get(&s.id).cloned().unwrap_or_default()));
            }
        }
        let mut refused: Vec<String> = Vec::new();
        for f in &st.failures {
            let version = versions.get(&f.id).cloned().unwrap_or_default();
            match self.holds(&f.id, &version).await {
                Ok(true) => {}
                Ok(false) => refused.push(format!("{}: {}", f.id, f.message.as_deref().unwrap_or("refused"))),
                Err(err) => {
                    let reason = format!("checking {} after a refusal: {err}", f.id);
                    let d = self.outbox.mark_failed(&e.incident_id, e.version, attempt, &reason)?;
                    tracing::warn!(incident_id = %e.incident_id, retry_in = ?d, reason = %reason, "cannot verify; will send again");
                    self.record(
                        &e.incident_id,
                        e.version,
                        ForwardState::Failed,
                        attempt,
                        Extra { reason: Some(&reason), ..ids },
                    )
                    .await;
                    return Ok(ForwardState::Failed);
                }
            }
        }
        if refused.is_empty() {
            self.outbox.mark_confirmed(&e.incident_id, e.version)?;
            metrics::counter!("soc_forwarder_confirmed_total").increment(1);
            tracing::info!(incident_id = %e.incident_id, version = e.version, attempt, "confirmed by the NCSC");
            self.record(&e.incident_id, e.version, ForwardState::Confirmed, attempt, ids).await;
            Ok(ForwardState::Confirmed)
        } else {
            let reason = format!("server refused {} object(s): {}", refused.len(), refused.join("; "));
            self.refused(
                e,
                attempt,
                TaxiiError::Http { url: self.opts.destination.clone(), status: 422, message: reason },
            )
            .await
        }
    }

    /// Approves an incident (manual policy) and records it.
    pub async fn approve(&self, incident_id: &str, by: &str) -> Result<Vec<u64>, ForwarderError> {
        let versions = self.outbox.approve(incident_id, by)?;
        let why = format!("approved by {by}");
        for v in &versions {
            self.record(incident_id, *v, ForwardState::Queued, 0, Extra { reason: Some(&why), ..Default::default() })
                .await;
        }
        Ok(versions)
    }

    /// Publishes the outbox's counts per state as gauges.
    pub fn export_gauges(&self) {
        if let Ok(counts) = self.outbox.counts() {
            for s in ["queued", "awaiting_approval", "sent", "confirmed", "failed", "rejected", "skipped"] {
                let n = counts.iter().find(|(k, _)| k == s).map(|(_, n)| *n).unwrap_or(0);
                metrics::gauge!("soc_forwarder_outbox", "state" => s).set(n as f64);
            }
        }
    }
}

/// Optional ids and reason of an audit record.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    bundle_id: Option<&'a str>,
    status_id: Option<&'a str>,
    reason: Option<&'a str>,
}

/// The sender: sends due entries until `stop`, sleeping until the next one is due (at most
/// `idle`).
pub async fn sender(
    fwd: Arc<Forwarder>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ForwarderError> {
    let mut pause = Duration::ZERO;
    loop {
        if *stop.borrow() {
            // A last pass for what is due now (the rest waits in the outbox for the next start).
            fwd.send_due(64).await?;
            fwd.export_gauges();
            return Ok(());
        }
        let stats = fwd.send_due(64).await?;
        fwd.export_gauges();
        // While the server keeps failing, pause between passes (the outbox's backoff, doubled
        // per failing pass), so an outage is not met with a stream of attempts.
        let b = fwd.outbox.backoff();
        pause = if stats.failed > 0 && stats.confirmed == 0 {
            if pause.is_zero() { b.initial } else { (pause * 2).min(b.max) }
        } else {
            Duration::ZERO
        };
        let busy = stats != SendStats::default();
        let wait = if !pause.is_zero() {
            pause
        } else if busy {
            Duration::ZERO
        } else {
            match fwd.outbox.next_due_us()? {
                Some(t) => Duration::from_micros((t - Timestamp::now().unix_micros()).max(0) as u64).min(idle),
                None => idle,
            }
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// The daemon: consumes incidents (group `opts.group`), puts them in the outbox, commits the
/// offsets after the outbox write, and runs the sender. When `stop` turns true it takes what
/// is already on the topic, makes one last pass over what is due, and returns.
pub async fn run(
    bus: Arc<dyn Bus>,
    fwd: Arc<Forwarder>,
    mut stop: watch::Receiver<bool>,
) -> Result<RunStats, ForwarderError> {
    let mut consumer = bus.subscribe(&fwd.opts.group, &[Kind::Incident]).await?;
    let (stop_send, send_rx) = watch::channel(false);
    let send_task = tokio::spawn(sender(fwd.clone(), Duration::from_secs(1), send_rx));
    let mut stats = RunStats::default();
    let mut stopping = false;
    let result = loop {
        // After the stop, take what is already on the topic (short polls), then end.
        if *stop.borrow() && !stopping {
            stopping = true;
        }
        let msgs = if stopping {
            consumer.poll(500, Duration::from_millis(100)).await
        } else {
            tokio::select! {
                r = consumer.poll(500, Duration::from_millis(500)) => r,
                r = stop.changed() => {
                    // A dropped stop channel means nobody can stop us any more: stop now.
                    stopping |= r.is_err();
                    continue;
                }
            }
        };
        if stopping && msgs.as_ref().is_ok_and(|m| m.is_empty()) {
            break Ok(());
        }
        let msgs = match msgs {
            Ok(m) => m,
            Err(_) if stopping => break Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "incident topic poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) => break Err(ForwarderError::Bus(e)),
        };
        if msgs.is_empty() {
            continue;
        }
        let mut failed = None;
        for m in &msgs {
            stats.consumed += 1;
            match Event::from_json(&m.payload) {
                Ok(ev) if ev.event_type == EventType::Incident => match &ev.incident {
                    Some(i) => {
                        stats.incidents += 1;
                        if let Err(e) = fwd.accept(i).await {
                            failed = Some(e);
                            break;
                        }
                    }
                    None => {
                        stats.undecodable += 1;
                        metrics::counter!("soc_forwarder_undecodable_total").increment(1);
                        tracing::warn!(
                            partition = m.partition,
                            offset = m.offset,
                            "incident record without an incident payload"
                        );
                    }
                },
                Ok(_) => {} // forwarding records and others share the topic
                Err(e) => {
                    stats.undecodable += 1;
                    metrics::counter!("soc_forwarder_undecodable_total").increment(1);
                    tracing::warn!(partition = m.partition, offset = m.offset, error = %e, "undecodable incident record skipped");
                }
            }
        }
        if let Some(e) = failed {
            // Not committed: the batch comes again after a restart.
            break Err(e);
        }
        let mut delay = Duration::from_millis(100);
        let committed = loop {
            match consumer.commit(&msgs).await {
                Ok(()) => break Ok(()),
                Err(e) if e.is_transient() && delay < Duration::from_secs(30) => {
                    tracing::warn!(error = %e, "commit of incident offsets failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => break Err(e),
            }
        };
        if let Err(e) = committed {
            break Err(ForwarderError::Bus(e));
        }
    };
    let _ = stop_send.send(true);
    match send_task.await {
        Ok(Err(e)) => return Err(e),
        Err(e) => tracing::error!(error = %e, "sender task failed"),
        Ok(Ok(())) => {}
    }
    result.map(|()| stats)
}
