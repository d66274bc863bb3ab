//! The Kafka bus against a real Kafka-protocol broker (`SOC_TEST_KAFKA`, e.g. `127.0.0.1:9092`;
//! `deploy/kafka.sh start` runs one). Every test uses its own topic prefix and groups.
//!
//! - a consumer that crashes (SIGKILL of a child process) between poll and commit loses nothing:
//!   the next member of its group gets exactly the uncommitted records again, recognised by id;
//! - records with one key stay on one partition, in order;
//! - `ensure_topics` is idempotent (also when two buses race) and never changes existing topics;
//! - an unreachable broker gives `Unavailable` naming the address within a few seconds;
//! - two members of a group split the partitions and together see every record once; when one
//!   leaves, the other takes its partitions and re-reads what it had not committed.
//!
//! Tests that need no broker (configuration, unreachable broker) always run. Logs go to stderr
//! by `RUST_LOG` (e.g. `info,librdkafka=debug`); `SOC_KAFKA_RDDEBUG=cgrp,fetch` turns on
//! librdkafka's debug contexts.

use soc_bus::kafka::{KafkaBus, KafkaConfig, KafkaConsumer};
use soc_bus::{Bus, BusError, Consumer, Message, Record};
use soc_model::Kind;
use soc_tests::{server, unique};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Environment of the child consumer process of the crash test.
const CHILD_BROKERS: &str = "SOC_KAFKA_CHILD_BROKERS";
const CHILD_PREFIX: &str = "SOC_KAFKA_CHILD_PREFIX";
const CHILD_GROUP: &str = "SOC_KAFKA_CHILD_GROUP";
const CHILD_COMMIT: &str = "SOC_KAFKA_CHILD_COMMIT";

/// Logs of the bus and librdkafka on stderr, filtered by `RUST_LOG` (default: warnings).
fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn config(brokers: &str, prefix: &str, partitions: i32) -> KafkaConfig {
    logs();
    let mut c = KafkaConfig::new(brokers, prefix);
    c.partitions = partitions;
    // A crashed member's partitions move after this long.
    c.session_timeout_ms = 6_000;
    // librdkafka's debug contexts, e.g. `cgrp,fetch` (shown with RUST_LOG=librdkafka=debug).
    if let Ok(d) = std::env::var("SOC_KAFKA_RDDEBUG") {
        c.client.insert("debug".into(), d);
    }
    c
}

fn record(id: u64, key: &str, seq: u64) -> Record {
    Record::new(key, serde_json::json!({ "id": id, "key": key, "seq": seq }).to_string().into_bytes())
}

fn field(m: &Message, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&m.payload).expect("payload is JSON");
    v.get(name).and_then(serde_json::Value::as_u64).unwrap_or_else(|| panic!("payload without {name}: {v}"))
}

fn ids(batch: &[Message]) -> Vec<u64> {
    batch.iter().map(|m| field(m, "id")).collect()
}

fn prefix(test: &str) -> String {
    unique(&format!("t_{test}"))
}

// ---------------------------------------------------------------------------------------
// At-least-once across a crash

/// The consumer of the crash test, run in a child process by
/// `crash_between_poll_and_commit_loses_nothing` (a no-op in a normal test run). It commits
/// every batch until `CHILD_COMMIT` records are committed, then polls one more batch, reports
/// it as handled but uncommitted, and waits to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_consumer_process() {
    let Ok(brokers) = std::env::var(CHILD_BROKERS) else { return };
    let prefix = std::env::var(CHILD_PREFIX).expect("prefix");
    let group = std::env::var(CHILD_GROUP).expect("group");
    let target: usize = std::env::var(CHILD_COMMIT).expect("commit target").parse().expect("number");
    let bus = KafkaBus::connect(config(&brokers, &prefix, 4)).expect("connect");
    let mut c = bus.subscribe(&group, &[Kind::Flow]).await.expect("subscribe");
    let mut committed = 0usize;
    loop {
        let batch = c.poll(500, Duration::from_secs(2)).await.expect("poll");
        if batch.is_empty() {
            continue;
        }
        let list = ids(&batch).iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        if committed < target {
            c.commit(&batch).await.expect("commit");
            committed += batch.len();
            println!("SOC-COMMITTED {list}");
        } else {
            // Handled (e.g. written to the store) but the commit never happens: crash here.
            println!("SOC-UNCOMMITTED {list}");
            println!("SOC-CRASH");
            std::future::pending::<()>().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_poll_and_commit_loses_nothing() {
    let Some(brokers) = server("SOC_TEST_KAFKA", "crash_between_poll_and_commit_loses_nothing") else { return };
    const N: u64 = 20_000;
    let prefix = prefix("crash");
    let group = unique("g_crash");
    let bus = KafkaBus::connect(config(&brokers, &prefix, 4)).expect("connect");
    bus.ensure_topics().await.expect("ensure_topics");

    let records: Vec<Record> = (0..N).map(|i| record(i, &format!("host-{}", i % 97), i)).collect();
    let t = Instant::now();
    bus.publish(Kind::Flow, records).await.expect("publish");
    let publish_s = t.elapsed().as_secs_f64();
    eprintln!("published {N} records in {publish_s:.2} s ({:.0}/s)", N as f64 / publish_s);

    // The first member, in a child process that is SIGKILLed between a poll and its commit.
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["child_consumer_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_BROKERS, &brokers)
        .env(CHILD_PREFIX, &prefix)
        .env(CHILD_GROUP, &group)
        .env(CHILD_COMMIT, (N / 2).to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child consumer");
    let stdout = child.stdout.take().expect("child stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let parse = |rest: &str| -> Vec<u64> { rest.split(',').map(|s| s.parse().expect("id")).collect() };
    let mut committed: Vec<u64> = Vec::new();
    let mut uncommitted: Vec<u64> = Vec::new();
    let t = Instant::now();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("the child consumer reports within 60 s");
        // The test harness prints `test child_consumer_process ... ` before the first report.
        let Some(at) = line.find("SOC-") else { continue };
        let line = &line[at..];
        if let Some(rest) = line.strip_prefix("SOC-COMMITTED ") {
            committed.extend(parse(rest));
        } else if let Some(rest) = line.strip_prefix("SOC-UNCOMMITTED ") {
            uncommitted.extend(parse(rest));
        } else if line == "SOC-CRASH" {
            break;
        }
    }
    child.kill().expect("SIGKILL the child consumer");
    let status = child.wait().expect("reap the child");
    eprintln!(
        "child consumer: {} committed, {} handled but uncommitted, in {:.2} s; killed ({status})",
        committed.len(),
        uncommitted.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(committed.len() as u64 >= N / 2 && !uncommitted.is_empty());

    // A new member of the same group: gets everything not committed, exactly once more.
    let mut seen: BTreeSet<u64> = committed.iter().chain(uncommitted.iter()).copied().collect();
    assert_eq!(seen.len(), committed.len() + uncommitted.len(), "the child saw no record twice");
    let committed_set: BTreeSet<u64> = committed.iter().copied().collect();
    let mut c = bus.subscribe(&group, &[Kind::Flow]).await.expect("subscribe");
    let mut redelivered: BTreeSet<u64> = BTreeSet::new();
    let mut received = 0usize;
    let t = Instant::now();
    let deadline = t + Duration::from_secs(90);
    let mut first_after: Option<Duration> = None;
    while (seen.len() as u64) < N {
        assert!(Instant::now() < deadline, "only {} of {N} ids after 90 s", seen.len());
        let batch = c.poll(1000, Duration::from_millis(500)).await.expect("poll");
        if batch.is_empty() {
            continue;
        }
        first_after.get_or_insert(t.elapsed());
        for id in ids(&batch) {
            received += 1;
            assert!(!committed_set.contains(&id), "id {id} was committed by the crashed member but delivered again");
            if !seen.insert(id) {
                assert!(redelivered.insert(id), "id {id} delivered twice to the new member");
            }
        }
        c.commit(&batch).await.expect("commit");
    }
    // Nothing else arrives.
    let extra = c.poll(1000, Duration::from_secs(2)).await.expect("poll");
    assert!(extra.is_empty(), "{} records after all {N} ids were seen", extra.len());
    let uncommitted_set: BTreeSet<u64> = uncommitted.iter().copied().collect();
    eprintln!(
        "new member: first records after {:.2} s (waiting out the dead member's session), {received} received, \
         {} duplicates recognised by id, all {N} ids present in {:.2} s",
        first_after.unwrap_or_default().as_secs_f64(),
        redelivered.len(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(seen, (0..N).collect::<BTreeSet<u64>>(), "every record arrives");
    assert!(!redelivered.is_empty(), "the kill between poll and commit must cause redelivery");
    assert_eq!(redelivered, uncommitted_set, "exactly the handled-but-uncommitted records come again");
    assert_eq!(received, N as usize - committed.len(), "the new member starts at the crashed member's commits");
}

// ---------------------------------------------------------------------------------------
// Per-key order

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_keep_their_partition_and_order() {
    let Some(brokers) = server("SOC_TEST_KAFKA", "keys_keep_their_partition_and_order") else { return };
    const KEYS: u64 = 60;
    const ROUNDS: u64 = 10;
    const PER_ROUND: u64 = 10;
    let bus = KafkaBus::connect(config(&brokers, &prefix("order"), 6)).expect("connect");
    bus.ensure_topics().await.expect("ensure_topics");
    // Each key's records in several batches; within a batch they interleave with other keys.
    let mut id = 0;
    for round in 0..ROUNDS {
        let mut batch = Vec::new();
        for s in 0..PER_ROUND {
            for k in 0..KEYS {
                batch.push(record(id, &format!("community-{k}"), round * PER_ROUND + s));
                id += 1;
            }
        }
        bus.publish(Kind::Protocol, batch).await.expect("publish");
    }
    let total = id;
    let mut c = bus.subscribe(&unique("g_order"), &[Kind::Protocol]).await.expect("subscribe");
    let mut got: Vec<Message> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (got.len() as u64) < total {
        assert!(Instant::now() < deadline, "only {} of {total} records after 60 s", got.len());
        let batch = c.poll(2000, Duration::from_millis(500)).await.expect("poll");
        c.commit(&batch).await.expect("commit");
        got.extend(batch);
    }
    // key -> (partition, seqs in consumption order); offsets grow within each partition.
    let mut by_key: BTreeMap<Vec<u8>, (BTreeSet<i32>, Vec<u64>)> = BTreeMap::new();
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for m in &got {
        if let Some(prev) = last_offset.insert(m.partition, m.offset) {
            assert!(m.offset > prev, "offsets go back on partition {}", m.partition);
        }
        let e = by_key.entry(m.key.clone()).or_default();
        e.0.insert(m.partition);
        e.1.push(field(m, "seq"));
    }
    assert_eq!(by_key.len() as u64, KEYS);
    for (key, (parts, seqs)) in &by_key {
        let key = String::from_utf8_lossy(key);
        assert_eq!(parts.len(), 1, "key {key} spread over partitions {parts:?}");
        let want: Vec<u64> = (0..ROUNDS * PER_ROUND).collect();
        assert_eq!(seqs, &want, "key {key} out of order");
    }
    let used: BTreeSet<i32> = by_key.values().flat_map(|(p, _)| p.iter().copied()).collect();
    eprintln!("{total} records of {KEYS} keys over partitions {used:?}: every key on one partition, in order");
    assert!(used.len() >= 4, "60 keys should use most of 6 partitions, used {used:?}");
}

// ---------------------------------------------------------------------------------------
// Topics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_topics_is_idempotent() {
    let Some(brokers) = server("SOC_TEST_KAFKA", "ensure_topics_is_idempotent") else { return };
    let prefix = prefix("topics");
    let bus = KafkaBus::connect(config(&brokers, &prefix, 3)).expect("connect");
    // Before: no topics, and subscribing says so.
    assert!(bus.topic_partitions().await.expect("metadata").is_empty());
    match bus.subscribe(&unique("g"), &[Kind::Alert]).await {
        Err(BusError::Topic { topic, .. }) => assert_eq!(topic, format!("{prefix}.alert")),
        Err(e) => panic!("expected a Topic error, got {e}"),
        Ok(_) => panic!("subscribed to a topic that does not exist"),
    }
    // Two buses racing, then again: all fine.
    let other = KafkaBus::connect(config(&brokers, &prefix, 3)).expect("connect");
    let (a, b) = tokio::join!(bus.ensure_topics(), other.ensure_topics());
    a.expect("first ensure_topics");
    b.expect("racing ensure_topics");
    bus.ensure_topics().await.expect("ensure_topics again");
    let parts = bus.topic_partitions().await.expect("metadata");
    assert_eq!(parts, Kind::ALL.iter().map(|k| (*k, 3usize)).collect::<BTreeMap<_, _>>());
    assert_eq!(bus.topic(Kind::DeadLetter), format!("{prefix}.dead-letter"));
    // Another configuration never changes existing topics.
    let wider = KafkaBus::connect(config(&brokers, &prefix, 8)).expect("connect");
    wider.ensure_topics().await.expect("ensure_topics with more partitions configured");
    assert_eq!(wider.topic_partitions().await.expect("metadata"), parts);
    // The topics work: a record goes through every kind.
    for k in Kind::ALL {
        bus.publish(k, vec![record(1, "k", 0)]).await.expect("publish");
    }
    let mut c = bus.subscribe(&unique("g_all"), &Kind::ALL).await.expect("subscribe");
    let mut kinds = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while kinds.len() < Kind::ALL.len() && Instant::now() < deadline {
        for m in c.poll(100, Duration::from_millis(500)).await.expect("poll") {
            kinds.insert(m.kind);
        }
    }
    assert_eq!(kinds, Kind::ALL.into_iter().collect());
}

#[tokio::test]
async fn unreachable_broker_is_unavailable_quickly() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let addr = format!("127.0.0.1:{port}");
    let bus = KafkaBus::connect(config(&addr, &prefix("down"), 3)).expect("connect does not wait for the broker");
    let t = Instant::now();
    match bus.ensure_topics().await {
        Err(BusError::Unavailable { addr: a, reason }) => {
            assert!(a.contains(&addr), "{a} should name {addr}");
            eprintln!("ensure_topics: Unavailable at {a} ({reason}) after {} ms", t.elapsed().as_millis());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    let e = bus.subscribe("g", &[Kind::Log]).await.err().expect("subscribe fails");
    assert!(matches!(e, BusError::Unavailable { .. }) && e.is_transient(), "{e}");
    assert!(e.to_string().contains(&addr), "{e}");

    // An address that never answers: bounded by timeout_ms.
    let mut cfg = config("10.255.255.1:9092", &prefix("void"), 3);
    cfg.timeout_ms = 2_000;
    let bus = KafkaBus::connect(cfg).expect("connect");
    let t = Instant::now();
    let e = bus.ensure_topics().await.expect_err("no broker there");
    eprintln!("ensure_topics on a silent address: {e} after {} ms", t.elapsed().as_millis());
    assert!(matches!(&e, BusError::Unavailable { addr, .. } if addr == "10.255.255.1:9092"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(8), "took {:?}", t.elapsed());
}

/// A commit in the middle of a producer batch: the next member resumes exactly there.
/// (Tansu 0.6 serves fetches only from batch starts; `rewind_on_assign` covers that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_a_commit_inside_a_producer_batch() {
    let Some(brokers) = server("SOC_TEST_KAFKA", "resume_from_a_commit_inside_a_producer_batch") else { return };
    let bus = KafkaBus::connect(config(&brokers, &prefix("mid"), 1)).expect("connect");
    bus.ensure_topics().await.expect("ensure_topics");
    // One publish of 1000 small records to one partition: one producer batch.
    bus.publish(Kind::Detection, (0..1000).map(|i| record(i, "k", i)).collect()).await.expect("publish");
    bus.publish(Kind::Detection, (1000..1010).map(|i| record(i, "k", i)).collect()).await.expect("publish");
    let group = unique("g_mid");
    let mut c = bus.subscribe(&group, &[Kind::Detection]).await.expect("subscribe");
    let mut first = Vec::new();
    while first.len() < 300 {
        first.extend(c.poll(300 - first.len(), Duration::from_secs(10)).await.expect("poll"));
    }
    assert_eq!(first.last().map(|m| m.offset), Some(299));
    c.commit(&first).await.expect("commit");
    drop(c);
    let mut c = bus.subscribe(&group, &[Kind::Detection]).await.expect("subscribe again");
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rest.len() < 710 {
        assert!(Instant::now() < deadline, "resumed with {} of 710 records", rest.len());
        rest.extend(c.poll(1000, Duration::from_millis(500)).await.expect("poll"));
    }
    assert!(c.poll(1000, Duration::from_millis(500)).await.expect("poll").is_empty());
    assert_eq!(rest.iter().map(|m| m.offset).collect::<Vec<_>>(), (300..1010).collect::<Vec<i64>>());
    assert_eq!(ids(&rest), (300..1010).collect::<Vec<u64>>());
}

// ---------------------------------------------------------------------------------------
// Consumer groups

/// Polls both members (each poll also serves its rebalance callbacks) until they split the
/// partitions of one topic between them.
async fn settle(
    a: &mut KafkaConsumer,
    b: &mut KafkaConsumer,
    partitions: usize,
) -> (Vec<(Kind, i32)>, Vec<(Kind, i32)>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(a.poll(10, Duration::from_millis(200)).await.expect("poll a").is_empty());
        assert!(b.poll(10, Duration::from_millis(200)).await.expect("poll b").is_empty());
        let (pa, pb) = (a.assignment().expect("assignment"), b.assignment().expect("assignment"));
        let union: BTreeSet<_> = pa.iter().chain(pb.iter()).collect();
        if !pa.is_empty() && !pb.is_empty() && union.len() == partitions && pa.len() + pb.len() == partitions {
            return (pa, pb);
        }
        assert!(Instant::now() < deadline, "no split after 60 s: a {pa:?}, b {pb:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_partitions_and_take_over_on_leave() {
    let Some(brokers) = server("SOC_TEST_KAFKA", "two_members_split_partitions_and_take_over_on_leave") else {
        return;
    };
    const N: u64 = 4_000;
    let bus = KafkaBus::connect(config(&brokers, &prefix("split"), 4)).expect("connect");
    bus.ensure_topics().await.expect("ensure_topics");
    let group = unique("g_split");
    let mut a = bus.consumer(&group, &[Kind::Log]).await.expect("member a");
    let mut b = bus.consumer(&group, &[Kind::Log]).await.expect("member b");
    let t = Instant::now();
    let (pa, pb) = settle(&mut a, &mut b, 4).await;
    eprintln!("group settled in {:.2} s: a {pa:?}, b {pb:?}", t.elapsed().as_secs_f64());

    bus.publish(Kind::Log, (0..N).map(|i| record(i, &format!("host-{}", i % 50), i)).collect()).await.expect("publish");
    let (mut got_a, mut got_b): (Vec<Message>, Vec<Message>) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while ((got_a.len() + got_b.len()) as u64) < N {
        assert!(Instant::now() < deadline, "only {} of {N} after 60 s", got_a.len() + got_b.len());
        got_a.extend(a.poll(1000, Duration::from_millis(200)).await.expect("poll a"));
        got_b.extend(b.poll(1000, Duration::from_millis(200)).await.expect("poll b"));
    }
    // Nothing more: every record exactly once, each from a partition of its member.
    assert!(a.poll(1000, Duration::from_millis(500)).await.expect("poll").is_empty());
    assert!(b.poll(1000, Duration::from_millis(500)).await.expect("poll").is_empty());
    assert_eq!(a.assignment().expect("assignment"), pa, "no rebalance during the run");
    for (got, parts, who) in [(&got_a, &pa, "a"), (&got_b, &pb, "b")] {
        assert!(!got.is_empty(), "member {who} got nothing");
        for m in got.iter() {
            assert!(
                parts.contains(&(m.kind, m.partition)),
                "member {who} got partition {} it does not own",
                m.partition
            );
        }
    }
    let ids_a: BTreeSet<u64> = ids(&got_a).into_iter().collect();
    let ids_b: BTreeSet<u64> = ids(&got_b).into_iter().collect();
    assert_eq!(ids_a.len(), got_a.len(), "a saw a record twice");
    assert_eq!(ids_b.len(), got_b.len(), "b saw a record twice");
    assert!(ids_a.is_disjoint(&ids_b), "a record went to both members");
    assert_eq!(ids_a.union(&ids_b).count() as u64, N);
    eprintln!("split: a {} records from {pa:?}, b {} from {pb:?}, none twice", got_a.len(), got_b.len());

    // a commits what it handled, b nothing; b leaves: a takes b's partitions and re-reads only
    // b's uncommitted records.
    a.commit(&got_a).await.expect("commit a");
    drop(b);
    let t = Instant::now();
    let mut again: Vec<Message> = Vec::new();
    let deadline = t + Duration::from_secs(60);
    while again.len() < got_b.len() {
        assert!(Instant::now() < deadline, "a re-read {} of b's {} records in 60 s", again.len(), got_b.len());
        let batch = a.poll(1000, Duration::from_millis(500)).await.expect("poll");
        a.commit(&batch).await.expect("commit");
        again.extend(batch);
    }
    assert!(a.poll(1000, Duration::from_secs(1)).await.expect("poll").is_empty());
    let all: Vec<(Kind, i32)> = (0..4).map(|p| (Kind::Log, p)).collect();
    assert_eq!(a.assignment().expect("assignment"), all, "a owns every partition after b left");
    let again_ids: BTreeSet<u64> = ids(&again).into_iter().collect();
    assert_eq!(again_ids.len(), again.len(), "a re-read a record twice");
    assert_eq!(again_ids, ids_b, "a re-reads exactly b's uncommitted records, none of its own committed ones");
    eprintln!("takeover: a re-read b's {} uncommitted records in {:.2} s", again.len(), t.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------
// Configuration (no broker)

#[test]
fn config_defaults_and_parsing() {
    let c: KafkaConfig = serde_json::from_str("{}").expect("all defaults");
    assert_eq!(c, KafkaConfig::default());
    assert_eq!(c.brokers, vec!["127.0.0.1:9092"]);
    assert_eq!((c.topic_prefix.as_str(), c.partitions, c.replication), ("soc", 6, 1));
    c.validate().expect("defaults are valid");

    let c: KafkaConfig = serde_json::from_str(
        r#"{"brokers": "k1:9092, k2:9092", "topic_prefix": "bo", "partitions": 12, "replication": 3,
            "client": {"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN",
                       "sasl.username": "soc", "sasl.password": "hunter2"}}"#,
    )
    .expect("parse");
    assert_eq!(c.brokers, vec!["k1:9092", "k2:9092"]);
    assert_eq!(c.bootstrap(), "k1:9092,k2:9092");
    let listed: KafkaConfig = serde_json::from_str(r#"{"brokers": ["k1:9092", "k2:9092"]}"#).expect("parse");
    assert_eq!(listed.brokers, c.brokers);
    // Secrets never show in Debug output.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2") && dbg.contains("<redacted>") && dbg.contains("sasl.username"), "{dbg}");

    let err = serde_json::from_str::<KafkaConfig>(r#"{"broker": "k1:9092"}"#).expect_err("unknown field");
    assert!(err.to_string().contains("unknown field `broker`"), "{err}");
}

#[test]
fn invalid_configurations_are_rejected_at_connect() {
    let bad = |f: &dyn Fn(&mut KafkaConfig)| {
        let mut c = KafkaConfig::default();
        f(&mut c);
        match KafkaBus::connect(c) {
            Err(BusError::Config(msg)) => msg,
            Err(e) => panic!("expected a Config error, got {e}"),
            Ok(_) => panic!("accepted"),
        }
    };
    assert!(bad(&|c| c.brokers.clear()).contains("brokers"));
    assert!(bad(&|c| c.partitions = 0).contains("partitions"));
    assert!(bad(&|c| c.topic_prefix = "so c".into()).contains("topic_prefix"));
    assert!(
        bad(&|c| {
            c.client.insert("enable.auto.commit".into(), "true".into());
        })
        .contains("enable.auto.commit")
    );
    assert!(
        bad(&|c| {
            c.client.insert("no.such.property".into(), "1".into());
        })
        .contains("no.such.property")
    );
    // A rejected secret is named, never shown.
    let msg = bad(&|c| {
        c.client.insert("sasl.oauthbearer.client.secret.bogus".into(), "hunter2".into());
    });
    assert!(!msg.contains("hunter2"), "{msg}");
}
