//! Correlation state follows its bus partition between the members of a Kafka consumer group
//! (`SOC_TEST_KAFKA`, e.g. `127.0.0.1:9092`; `deploy/kafka.sh start` runs one).
//!
//! One correlator consumes a burst of failed logons per host (not yet enough for the
//! correlation, 10 per host within an hour), then a second member joins the group: the first
//! one's revoked partitions are checkpointed and dropped from its memory, the second restores
//! them from the shared checkpoint directory when they are assigned. More logons follow while
//! the group rebalances. Each host's correlation fires exactly as often as in one
//! uninterrupted run (the count of its logons / 10): no window is lost with its partition and
//! no record is counted by both members.

use soc_bus::kafka::{KafkaBus, KafkaConfig};
use soc_bus::{Bus, BusError};
use soc_correlator::correlation::CorrelationRules;
use soc_correlator::{CorrelatorOptions, CorrelatorStats, SigmaRules};
use soc_model::{Event, EventType, Kind, Log, LogSource, Timestamp};
use soc_store::observe::Observed;
use soc_store::{EventQuery, SqliteStore, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const RULES: &str = "title: Burst per host\nid: corr-host-burst\ncorrelation:\n  type: event_count\n  rules: [failed]\n  group-by: [host]\n  timespan: 1h\n  condition: {gte: 10}\nlevel: high\n---\ntitle: Failed\nid: base-failed\nname: failed\nlogsource: {product: windows, service: security}\ndetection: {s: {EventID: 4625}, condition: s}\nlevel: low\n";
const HOSTS: u64 = 20;
/// Logons per host before the second member joins.
const FIRST: u64 = 6;

fn server() -> Option<String> {
    match std::env::var("SOC_TEST_KAFKA") {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("SOC_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "SOC_TEST_KAFKA is not set but SOC_REQUIRE_SERVERS=1"
            );
            eprintln!("SKIPPED partitions_kafka: SOC_TEST_KAFKA not set (run deploy/test.sh to start the broker)");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("{prefix}_{}_{}", std::process::id(), t % 1_000_000_000)
}

/// Failed logon number `seq` of host `host`.
fn logon(host: u64, seq: u64, base: i64) -> Event {
    let mut e = Event::new(EventType::Log, Timestamp::from_unix_micros(base + (seq as i64) * 1_000_000));
    e.host = Some(format!("h{host}"));
    let mut l = Log {
        logsource: LogSource { product: Some("windows".into()), service: Some("security".into()), category: None },
        ..Default::default()
    };
    l.fields.insert("EventID".into(), serde_json::json!(4625));
    l.fields.insert("Seq".into(), serde_json::json!(seq));
    e.log = Some(l);
    e.ensure_id();
    e
}

fn options(group: &str, checkpoint: &std::path::Path) -> CorrelatorOptions {
    let (sigma, errs) = SigmaRules::from_sources([("r.yml", RULES)]);
    assert!(errs.is_empty(), "{errs:?}");
    let (corr, errs) = CorrelationRules::from_sources(&[("r.yml".into(), RULES.to_string())]);
    assert!(errs.is_empty(), "{errs:?}");
    CorrelatorOptions {
        group: group.to_string(),
        kinds: vec![Kind::Log],
        batch: 50,
        poll_timeout: Duration::from_millis(100),
        sigma: Some(Arc::new(sigma)),
        correlations: Some(Arc::new(corr)),
        incidents: None,
        checkpoint_dir: Some(checkpoint.to_path_buf()),
        ..Default::default()
    }
}

/// One member: how many log records it stored, its stop switch and its task.
type Running = (Arc<AtomicU64>, watch::Sender<bool>, tokio::task::JoinHandle<Result<CorrelatorStats, String>>);

fn start(bus: &Arc<KafkaBus>, store: &Arc<SqliteStore>, opts: CorrelatorOptions) -> Running {
    let logs = Arc::new(AtomicU64::new(0));
    // The member's view of the shared store: counts the log records it stored.
    let member = Observed::new(store.clone(), {
        let logs = logs.clone();
        move |events: &[Event]| {
            let n = events.iter().filter(|e| e.event_type == EventType::Log).count() as u64;
            logs.fetch_add(n, Ordering::SeqCst);
        }
    });
    let (stop, rx) = watch::channel(false);
    let (b, m) = (bus.clone() as Arc<dyn Bus>, Arc::new(member) as Arc<dyn Store>);
    let task = tokio::spawn(async move { soc_correlator::run(b, m, opts, rx).await.map_err(|e| e.to_string()) });
    (logs, stop, task)
}

async fn publish(bus: &KafkaBus, events: &[Event]) -> Result<(), BusError> {
    soc_bus::publish_events(bus, events).await
}

async fn stored_logs(store: &SqliteStore) -> u64 {
    let q = EventQuery { event_type: Some("log".into()), limit: 10_000, ..Default::default() };
    store.count_events(&q).await.expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_windows_move_with_their_partitions_between_group_members() {
    let Some(brokers) = server() else { return };
    let mut cfg = KafkaConfig::new(&brokers, &unique("t_corrparts"));
    cfg.partitions = 4;
    cfg.session_timeout_ms = 6_000;
    let bus = Arc::new(KafkaBus::connect(cfg).expect("connect"));
    bus.ensure_topics().await.expect("ensure_topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteStore::open(dir.path().join("store.sqlite")).expect("store"));
    store.migrate().await.expect("migrate");
    let checkpoints = dir.path().join("state");
    let group = unique("g_corrparts");
    let base = Timestamp::now().unix_micros() - 1_800_000_000;
    let mut seq: BTreeMap<u64, u64> = (0..HOSTS).map(|h| (h, 0)).collect();
    let round = |seq: &mut BTreeMap<u64, u64>| -> Vec<Event> {
        seq.iter_mut()
            .map(|(h, n)| {
                *n += 1;
                logon(*h, *n, base)
            })
            .collect()
    };

    // Member a alone: FIRST logons per host, below the threshold.
    let (a, stop_a, task_a) = start(&bus, &store, options(&group, &checkpoints));
    let mut published = 0u64;
    for _ in 0..FIRST {
        let batch = round(&mut seq);
        publish(&bus, &batch).await.expect("publish");
        published += batch.len() as u64;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while a.load(Ordering::SeqCst) < published {
        assert!(Instant::now() < deadline, "member a stored {} of {published}", a.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Member b joins; logons go on (one per host per round) until b has stored some, i.e. the
    // group has rebalanced and b owns partitions whose windows a started.
    let (b, stop_b, task_b) = start(&bus, &store, options(&group, &checkpoints));
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut rounds = 0;
    while rounds < 2 || b.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "member b stored nothing in 90 s");
        let batch = round(&mut seq);
        publish(&bus, &batch).await.expect("publish");
        published += batch.len() as u64;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Then up to a multiple of 10 logons per host: a member that lost the first logons of a
    // host (or started its window from scratch) counts fewer correlations for it.
    while seq.values().any(|n| *n < 10 || n % 10 != 0) {
        let batch = round(&mut seq);
        publish(&bus, &batch).await.expect("publish");
        published += batch.len() as u64;
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    while stored_logs(&store).await < published {
        assert!(Instant::now() < deadline, "{} of {published} stored", stored_logs(&store).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let the last batches' correlations be stored, then stop both.
    let _ = stop_b.send(true);
    let stats_b = task_b.await.expect("join b").expect("member b");
    let _ = stop_a.send(true);
    let stats_a = task_a.await.expect("join a").expect("member a");
    eprintln!("a: {stats_a:?}\nb: {stats_b:?}\nlogons per host: {:?}", seq.values().next());

    assert!(stats_a.partitions_revoked > 0, "a gave no partition up: {stats_a:?}");
    assert!(stats_b.partitions_assigned > 0 && stats_b.consumed > 0, "b took nothing over: {stats_b:?}");
    let q = EventQuery { event_type: Some("detection".into()), limit: 10_000, ..Default::default() };
    let dets = store.query_events(&q).await.expect("query");
    let mut fired: BTreeMap<String, u64> = BTreeMap::new();
    for d in &dets {
        assert_eq!(d.detection.as_ref().map(|x| x.rule_id.as_str()), Some("corr-host-burst"), "{d:?}");
        *fired.entry(d.host.clone().unwrap_or_default()).or_default() += 1;
    }
    let expected: BTreeMap<String, u64> = seq.iter().map(|(h, n)| (format!("h{h}"), n / 10)).collect();
    assert_eq!(fired, expected, "per host: its logons / 10 correlations, as in one uninterrupted run");
}
