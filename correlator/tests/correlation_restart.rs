//! Correlation state survives a correlator restart: Hayabusa's password-spray correlation
//! (value_count of TargetUserName per IpAddress and Computer, 5 minutes) over DeepBlueCLI's
//! `password-spray` events, cut in the middle of the spray. The first half goes through one
//! correlator run, the process "restarts" (a new run on the same bus and checkpoint
//! directory), the second half goes through the next run: the correlation fires once, as in
//! one uninterrupted run (and not at all when the state is kept in memory only).

use soc_bus::{Bus, MemoryBus};
use soc_correlator::correlation::CorrelationRules;
use soc_correlator::{CorrelatorOptions, SigmaRules};
use soc_model::{Event, EventType};
use soc_store::{EventQuery, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const RULE: &str = "sigma-extra/hayabusa-rules/hayabusa/builtin/Security/LogonLogoff/Logon/Sec_4648_Med_ExplicitLogon_PW-Spray_Correlation.yml";

fn corpora() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora");
    p.is_dir().then_some(p)
}

fn spray_events(root: &Path, tmp: &Path) -> Option<Vec<Event>> {
    let archive = root.join("evtx-samples/DeepBlueCLI.jsonl.tar.zst");
    let ok = std::process::Command::new("tar")
        .arg("--zstd")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(tmp)
        .arg("DeepBlueCLI/password-spray.jsonl")
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: cannot unpack password-spray.jsonl from {}", archive.display());
        return None;
    }
    let body = std::fs::read(tmp.join("DeepBlueCLI/password-spray.jsonl")).ok()?;
    let out = soc_collector::parse_http_body(&body, Some("application/x-ndjson"), "127.0.0.1:9");
    assert!(out.dead_letters.is_empty(), "{:?}", out.dead_letters.first());
    let mut events = out.events;
    events.sort_by_key(|e| e.timestamp);
    Some(events)
}

fn options(root: &Path, checkpoint: Option<PathBuf>) -> CorrelatorOptions {
    let rule = root.join(RULE);
    let (sigma, _) = SigmaRules::load(std::slice::from_ref(&rule));
    let (corr, errors) = CorrelationRules::load(&[rule]);
    assert!(errors.is_empty(), "{errors:?}");
    CorrelatorOptions {
        batch: 50,
        poll_timeout: Duration::from_millis(20),
        sigma: Some(Arc::new(sigma)),
        correlations: Some(Arc::new(corr)),
        checkpoint_dir: checkpoint,
        ..Default::default()
    }
}

async fn sprays(store: &SqliteStore) -> usize {
    let q = EventQuery { event_type: Some("detection".into()), ..Default::default() };
    let rows = store.query_events(&q).await.expect("query");
    rows.iter().filter(|e| e.detection.as_ref().is_some_and(|d| d.engine == "sigma-correlation")).count()
}

/// Runs the correlator over `parts` one after the other, a restart between each.
async fn run_in_parts(root: &Path, parts: &[&[Event]], checkpoint: Option<PathBuf>) -> usize {
    let bus = Arc::new(MemoryBus::new("t", 100_000));
    bus.ensure_topics().await.expect("topics");
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    store.migrate().await.expect("migrate");
    for part in parts {
        soc_bus::publish_events(bus.as_ref(), part).await.expect("publish");
        let (_tx, rx) = watch::channel(true); // drain what is on the bus, then return
        soc_correlator::run(bus.clone(), store.clone(), options(root, checkpoint.clone()), rx).await.expect("run");
    }
    sprays(&store).await
}

#[tokio::test]
async fn a_password_spray_cut_by_a_restart_fires_once_as_without_the_restart() {
    let Some(root) = corpora() else {
        eprintln!("SKIPPED: ../shared/corpora is absent");
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(events) = spray_events(&root, tmp.path()) else { return };
    // The spray's base matches are its 4648 events; every five distinct users fire it once
    // (the window then starts over). Take the sequence up to the fifth 4648 (one spray) and
    // cut it after the third.
    let spray_at: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.log.as_ref().and_then(|l| l.fields.get("EventID")).and_then(|v| v.as_i64()) == Some(4648))
        .map(|(i, _)| i)
        .collect();
    assert!(spray_at.len() >= 5, "{} 4648 events", spray_at.len());
    let events = &events[..=spray_at[4]];
    let cut = spray_at[2] + 1;
    let (first, second) = events.split_at(cut);
    assert!(events.iter().all(|e| e.event_type == EventType::Log));

    let whole = run_in_parts(&root, &[events], None).await;
    let checkpoints = tempfile::tempdir().expect("tempdir");
    let restarted = run_in_parts(&root, &[first, second], Some(checkpoints.path().to_path_buf())).await;
    let forgetful = run_in_parts(&root, &[first, second], None).await;
    eprintln!(
        "password spray: {} events ({} 4648 in the file), cut at {cut}: uninterrupted {whole}, restarted with checkpoint \
         {restarted}, restarted in memory only {forgetful}",
        events.len(),
        spray_at.len()
    );
    assert_eq!(whole, 1, "five users sprayed: the correlation fires once in one run");
    assert_eq!(restarted, whole, "the restart changes nothing with the checkpoint");
    assert!(forgetful < whole, "without it the windows of the first half are lost");
}

/// The same restart through a real Kafka-protocol broker (`SOC_TEST_KAFKA`, e.g.
/// `127.0.0.1:9092`; `deploy/kafka.sh start` runs one): three partitions, the logs keyed by host,
/// the consumer group rejoining after the restart. Half of a five-user spray, a restart, the
/// rest: the correlation fires once (and not at all without the checkpoint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spray_cut_by_a_restart_fires_once_through_kafka() {
    let Ok(brokers) = std::env::var("SOC_TEST_KAFKA") else {
        eprintln!("SKIPPED: SOC_TEST_KAFKA is not set (e.g. 127.0.0.1:9092)");
        return;
    };
    let checkpoints = tempfile::tempdir().expect("tempdir");
    let with = kafka_spray_across_restart(&brokers, Some(checkpoints.path().to_path_buf())).await;
    let without = kafka_spray_across_restart(&brokers, None).await;
    eprintln!("kafka: spray detections with the checkpoint {with}, in memory only {without}");
    assert_eq!(with, 1);
    assert_eq!(without, 0);
}

const SPRAY: &str = "title: Spray\nid: corr-spray\ncorrelation:\n  type: value_count\n  rules: [failed]\n  group-by: [IpAddress]\n  timespan: 10m\n  condition: {gte: 5, field: TargetUserName}\nlevel: high\n---\ntitle: Failed\nid: base-failed\nname: failed\nlogsource: {product: windows, service: security}\ndetection: {s: {EventID: 4625}, condition: s}\nlevel: low\n";

fn failed_logon(i: i64, user: &str) -> Event {
    let ts = soc_model::Timestamp::from_unix_micros(1_700_000_000_000_000 + i * 1_000_000);
    let mut e = Event::new(EventType::Log, ts);
    e.host = Some("dc01".into());
    let mut fields = serde_json::Map::new();
    fields.insert("EventID".into(), serde_json::json!(4625));
    fields.insert("TargetUserName".into(), serde_json::json!(user));
    fields.insert("IpAddress".into(), serde_json::json!("203.0.113.9"));
    e.log = Some(soc_model::Log {
        logsource: soc_model::LogSource {
            product: Some("windows".into()),
            service: Some("security".into()),
            category: None,
        },
        fields,
        ..Default::default()
    });
    e.ensure_id();
    e
}

async fn kafka_spray_across_restart(brokers: &str, checkpoint: Option<PathBuf>) -> usize {
    let unique = format!(
        "t_corr_restart_{}_{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
    );
    let mut cfg = soc_bus::kafka::KafkaConfig::new(brokers, &unique);
    cfg.partitions = 3;
    let bus = Arc::new(soc_bus::kafka::KafkaBus::connect(cfg).expect("connect"));
    bus.ensure_topics().await.expect("topics");
    let store = Arc::new(SqliteStore::open_in_memory().expect("store"));
    store.migrate().await.expect("migrate");
    let logs: Vec<Event> = (0..5).map(|i| failed_logon(i, &format!("user{i}"))).collect();
    let (sigma, _) = SigmaRules::from_sources([("spray.yml", SPRAY)]);
    let sigma = Arc::new(sigma);
    let (corr, errors) = CorrelationRules::from_sources(&[("spray.yml".into(), SPRAY.to_string())]);
    assert!(errors.is_empty(), "{errors:?}");
    let corr = Arc::new(corr);
    let mut stored_logs = 0;
    for half in [&logs[..3], &logs[3..]] {
        soc_bus::publish_events(bus.as_ref(), half).await.expect("publish");
        stored_logs += half.len() as u64;
        let opts = CorrelatorOptions {
            group: format!("{unique}_g"),
            poll_timeout: Duration::from_millis(100),
            sigma: Some(sigma.clone()),
            correlations: Some(corr.clone()),
            checkpoint_dir: checkpoint.clone(),
            ..Default::default()
        };
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(soc_correlator::run(bus.clone(), store.clone(), opts, rx));
        // Until this half is stored (the group join takes a moment), then stop: a restart.
        let q = EventQuery { event_type: Some("log".into()), ..Default::default() };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while store.count_events(&q).await.expect("count") < stored_logs {
            assert!(std::time::Instant::now() < deadline, "logs not stored within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = stop.send(true);
        task.await.expect("join").expect("run");
    }
    sprays(&store).await
}
