//! The forwarder against a real TAXII 2.1 server (medallion, started by each test on a free
//! loopback port with the project's persistent backend). Skips visibly when medallion is not
//! installed, fails instead when SOC_REQUIRE_SERVERS=1.

mod common;

use common::{Medallion, RO, RW, SMALL, USER};
use soc_bus::{Bus, MemoryBus};
use soc_forwarder::outbox::Backoff;
use soc_forwarder::taxii::{Credentials, Secret};
use soc_forwarder::{Forwarder, ForwarderOptions, SendStats};
use soc_model::{Event, EventType, ForwardState, Incident, Level};
use soc_store::Store;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

fn options(m: &Medallion, collection: &str, password: &str, outbox: &Path) -> ForwarderOptions {
    let mut o = ForwarderOptions::new(m.objects_url(collection), outbox);
    o.client.credentials = Some(Credentials { username: USER.into(), password: Secret::new(password) });
    o.backoff = Backoff { initial: Duration::from_millis(20), max: Duration::from_millis(500) };
    o.status_wait = Duration::from_secs(5);
    o.policy.min_severity = Level::Informational;
    o
}

async fn store(dir: &Path) -> Arc<dyn Store> {
    let s = soc_store::sqlite::SqliteStore::open(dir.join("soc.sqlite")).unwrap();
    s.migrate().await.unwrap();
    Arc::new(s)
}

fn event(i: Incident) -> Event {
    let mut ev = Event::new(EventType::Incident, i.updated.unwrap_or_else(soc_model::Timestamp::now));
    ev.incident = Some(i);
    ev.ensure_id();
    ev
}

fn confirmed(f: &Forwarder) -> u64 {
    f.outbox().counts().unwrap().into_iter().find(|(s, _)| s == "confirmed").map(|(_, n)| n).unwrap_or(0)
}

/// Waits for a condition; the generous limit only turns a hang into a failure.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(900), "gave up waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn records(store: &Arc<dyn Store>, id: Option<&str>) -> Vec<soc_model::Forwarding> {
    store.query_forwarding(id, 1_000_000).await.unwrap().into_iter().filter_map(|e| e.forwarding).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_incidents_arrive_exactly_once_across_two_server_restarts_and_a_forwarder_restart() {
    let Some(mut m) = Medallion::start("a_thousand_incidents_arrive_exactly_once") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new("soc", 10_000));
    bus.ensure_topics().await.unwrap();
    let events: Vec<Event> = (0..1000).map(|n| event(common::bare_incident(n))).collect();
    soc_bus::publish_events(&*bus, &events).await.unwrap();
    let opts = options(&m, RW, &m.password.clone(), &dir.path().join("outbox.sqlite"));

    let fwd = Arc::new(Forwarder::new(opts.clone(), Some(store.clone())).unwrap());
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(soc_forwarder::run(bus.clone(), fwd.clone(), rx));
    wait_until("300 confirmed", || confirmed(&fwd) >= 300).await;
    tokio::task::block_in_place(|| m.restart());
    wait_until("500 confirmed", || confirmed(&fwd) >= 500).await;
    // The forwarder stops (its bus offsets are committed, its outbox keeps the rest) and a
    // new one takes over the same outbox and consumer group.
    stop.send(true).unwrap();
    let first = task.await.unwrap().unwrap();
    assert_eq!(first.incidents, 1000, "{first:?}");
    drop(fwd);
    let fwd = Arc::new(Forwarder::new(opts.clone(), Some(store.clone())).unwrap());
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(soc_forwarder::run(bus.clone(), fwd.clone(), rx));
    wait_until("700 confirmed", || confirmed(&fwd) >= 700).await;
    tokio::task::block_in_place(|| m.restart());
    wait_until("1000 confirmed", || confirmed(&fwd) >= 1000).await;
    stop.send(true).unwrap();
    let second = task.await.unwrap().unwrap();
    assert_eq!(second.incidents, 0, "the second forwarder got redelivered incidents: {second:?}");

    // The server holds exactly one incident object, in one version, per incident.
    let page = fwd
        .client()
        .get_all_objects(&m.objects_url(RW), &[("match[type]", "incident"), ("match[version]", "all")])
        .await
        .unwrap();
    let ids: BTreeSet<&str> = page.objects.iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(page.objects.len(), 1000, "incident objects on the server (all versions)");
    assert_eq!(ids.len(), 1000);
    let expected: BTreeSet<String> =
        (0..1000).map(|n| soc_forwarder::stix::incident_stix_id(&common::bare_incident(n).incident_id)).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect());

    // The outbox and the audit records say confirmed for each.
    let all = fwd.outbox().all().unwrap();
    assert_eq!(all.len(), 1000);
    let not_confirmed: Vec<_> = all.iter().filter(|e| e.state != ForwardState::Confirmed).collect();
    assert!(not_confirmed.is_empty(), "{not_confirmed:?}");
    let recs = records(&store, None).await;
    let confirmed_ids: BTreeSet<&str> =
        recs.iter().filter(|r| r.state == ForwardState::Confirmed).map(|r| r.incident_id.as_str()).collect();
    assert_eq!(confirmed_ids.len(), 1000);
    let queued: BTreeSet<&str> =
        recs.iter().filter(|r| r.state == ForwardState::Queued).map(|r| r.incident_id.as_str()).collect();
    assert_eq!(queued.len(), 1000);
    let retries = all.iter().filter(|e| e.attempts > 1).count();
    eprintln!("1000 incidents confirmed; {retries} needed more than one attempt (server restarts)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_bundles_are_recorded_with_the_servers_message_and_not_retried() {
    let Some(m) = Medallion::start("refused_bundles_are_recorded") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let wrong = format!("{}-wrong", m.password);
    let cases = [
        ("read-only collection", RO, m.password.clone(), "Forbidden to write", 403),
        ("request over the API root's size limit", SMALL, m.password.clone(), "exceeds maximum", 413),
        ("wrong password", RW, wrong, "HTTP 401", 401),
    ];
    for (n, (what, collection, password, message, status)) in cases.into_iter().enumerate() {
        let fwd = Forwarder::new(
            options(&m, collection, &password, &dir.path().join(format!("o{n}.sqlite"))),
            Some(store.clone()),
        )
        .unwrap();
        let inc = common::rich_incident(100 + n * 10);
        assert_eq!(fwd.accept(&inc).await.unwrap(), Some(ForwardState::Queued));
        let st = fwd.send_due(10).await.unwrap();
        assert_eq!(st, SendStats { rejected: 1, ..Default::default() }, "{what}");
        let e = &fwd.outbox().entries(&inc.incident_id).unwrap()[0];
        assert_eq!(e.state, ForwardState::Rejected, "{what}");
        let reason = e.reason.clone().unwrap_or_default();
        assert!(reason.contains(message) && reason.contains(&status.to_string()), "{what}: {reason}");
        // Retrying cannot help: nothing is due, later passes send nothing.
        for _ in 0..3 {
            assert_eq!(fwd.send_due(10).await.unwrap(), SendStats::default(), "{what}");
        }
        assert_eq!(fwd.outbox().entries(&inc.incident_id).unwrap()[0].attempts, 1, "{what}");
        let recs = records(&store, Some(&inc.incident_id)).await;
        let rejected: Vec<_> = recs.iter().filter(|r| r.state == ForwardState::Rejected).collect();
        assert_eq!(rejected.len(), 1, "{what}: {recs:?}");
        assert!(rejected[0].reason.as_deref().unwrap_or_default().contains(message), "{what}");
        assert_eq!(rejected[0].attempt, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_retried_with_backoff_until_it_confirms() {
    let Some(mut m) = Medallion::start("an_unreachable_server_is_retried") else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let fwd = Forwarder::new(options(&m, RW, &m.password.clone(), &dir.path().join("o.sqlite")), Some(store.clone()))
        .unwrap();
    tokio::task::block_in_place(|| m.kill());
    let inc = common::rich_incident(7);
    fwd.accept(&inc).await.unwrap();
    assert_eq!(fwd.send_due(10).await.unwrap(), SendStats { failed: 1, ..Default::default() });
    let e = &fwd.outbox().entries(&inc.incident_id).unwrap()[0];
    assert_eq!(e.state, ForwardState::Failed);
    assert!(e.reason.as_deref().unwrap_or_default().contains("cannot connect"), "{e:?}");
    tokio::task::block_in_place(|| m.restart());
    let start = Instant::now();
    loop {
        let st = fwd.send_due(10).await.unwrap();
        if st.confirmed == 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "never confirmed: {:?}",
            fwd.outbox().entries(&inc.incident_id)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = &fwd.outbox().entries(&inc.incident_id).unwrap()[0];
    assert_eq!(e.state, ForwardState::Confirmed);
    assert!(e.attempts >= 2);
    let states: Vec<ForwardState> =
        records(&store, Some(&inc.incident_id)).await.iter().rev().map(|r| r.state).collect();
    assert_eq!(states.first(), Some(&ForwardState::Queued), "{states:?}");
    assert!(states.contains(&ForwardState::Failed) && states.last() == Some(&ForwardState::Confirmed), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_the_server_already_holds_is_confirmed_without_a_second_copy_and_new_versions_are_versions() {
    let Some(m) = Medallion::start("a_bundle_the_server_already_holds") else { return };
    let dir = tempfile::tempdir().unwrap();
    let fwd = Forwarder::new(options(&m, RW, &m.password.clone(), &dir.path().join("o.sqlite")), None).unwrap();
    let mut inc = common::rich_incident(40);
    // A send whose response was lost: the server has the objects, the outbox does not know.
    let bundle = soc_forwarder::outgoing_bundle(
        &inc,
        &soc_forwarder::redact::Redaction::default(),
        &soc_forwarder::stix::BundleOptions::default(),
    );
    let env = serde_json::json!({ "objects": bundle["objects"] });
    let st = fwd.client().add_objects(&m.objects_url(RW), &env).await.unwrap();
    assert_eq!(st.failure_count, 0);
    fwd.accept(&inc).await.unwrap();
    assert_eq!(fwd.send_due(10).await.unwrap().confirmed, 1);
    let stix_id = soc_forwarder::stix::incident_stix_id(&inc.incident_id);
    let versions = fwd.client().object_versions(&m.objects_url(RW), &stix_id).await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    // A new version of the incident is a new version of the same STIX object.
    inc.version = 2;
    inc.severity = Level::Critical;
    inc.updated = inc.updated.map(|t| t.add_micros(60_000_000));
    fwd.accept(&inc).await.unwrap();
    assert_eq!(fwd.send_due(10).await.unwrap().confirmed, 1);
    let versions = fwd.client().object_versions(&m.objects_url(RW), &stix_id).await.unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let all = fwd
        .client()
        .get_all_objects(&m.objects_url(RW), &[("match[type]", "incident"), ("match[version]", "all")])
        .await
        .unwrap();
    assert_eq!(all.objects.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncsc_indicators_become_ioc_lists() {
    let Some(m) = Medallion::start("ncsc_indicators_become_ioc_lists") else { return };
    let dir = tempfile::tempdir().unwrap();
    let opts = soc_forwarder::taxii::ClientOptions {
        credentials: Some(Credentials { username: USER.into(), password: Secret::new(m.password.clone()) }),
        ..Default::default()
    };
    let client = soc_forwarder::taxii::TaxiiClient::new(&opts).unwrap();
    let ind = |n: u32, pattern: &str| {
        serde_json::json!({"type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--{}", soc_forwarder::stix::uuid5(&soc_forwarder::stix::NAMESPACE, pattern.as_bytes())),
            "created": "2026-01-01T00:00:00.000Z", "modified": format!("2026-01-0{n}T00:00:00.000Z"),
            "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"})
    };
    let objs = vec![
        ind(1, "[ipv4-addr:value = '198.51.100.9']"),
        ind(1, "[domain-name:value = 'bad.example' OR url:value = 'http://bad.example/x']"),
        ind(1, "[file:hashes.'SHA-256' = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855']"),
        ind(1, "[ipv4-addr:value = '192.0.2.0/24']"),
        ind(1, "[process:name = 'evil.exe']"),
    ];
    client.add_objects(&m.objects_url(RW), &serde_json::json!({ "objects": objs })).await.unwrap();
    let mut inbound = soc_forwarder::inbound::Inbound::new(client.clone(), m.objects_url(RW), dir.path());
    let st = inbound.poll_once().await.unwrap();
    assert_eq!((st.indicators, st.loaded, st.unsupported), (5, 4, 1), "{st:?}");
    let read = |f: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    assert_eq!(read("ip-ncsc.txt"), vec!["198.51.100.9"]);
    assert_eq!(read("cidr-ncsc.txt"), vec!["192.0.2.0/24"]);
    assert_eq!(read("domain-ncsc.txt"), vec!["bad.example"]);
    assert_eq!(read("url-ncsc.txt"), vec!["http://bad.example/x"]);
    assert_eq!(read("hash-ncsc.txt").len(), 1);
    // A later poll picks up what was added since, and a new version replaces the old value.
    let mut newer = ind(2, "[ipv4-addr:value = '198.51.100.9']");
    newer["pattern"] = serde_json::json!("[ipv4-addr:value = '198.51.100.10']");
    client.add_objects(&m.objects_url(RW), &serde_json::json!({ "objects": [newer] })).await.unwrap();
    inbound.poll_once().await.unwrap();
    assert_eq!(read("ip-ncsc.txt"), vec!["198.51.100.10"]);
}
