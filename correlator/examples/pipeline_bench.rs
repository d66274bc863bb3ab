//! Sustained throughput and consumer lag of the production path: Kafka -> correlator (Sigma
//! with the project's rules and pipelines, correlation, deduplication, checkpoints, incidents)
//! -> ClickHouse.
//!
//! ```sh
//! deploy/kafka.sh start; deploy/clickhouse.sh start
//! cargo run --release -p soc-correlator --example pipeline_bench -- \
//!     --brokers 127.0.0.1:9092 --clickhouse http://127.0.0.1:8123 --events 200000 --rate 20000
//! ```
//!
//! A producer publishes `--events` log records from 200 hosts (96% Windows logons, 2% Security
//! 4688 `whoami` process creations that the project's rule sees through the Security pipeline,
//! 2% sshd password failures feeding the project's password-guessing correlation) at `--rate` records/s (0: as fast as the broker takes them) on fresh topics
//! (`bench<time>.*`, `--partitions` each). One correlator consumes them and writes to the
//! `--database` ClickHouse database (`soc_pipeline_bench`). Every second the example prints
//! what was published, how many of this run's log records ClickHouse has acknowledged (counted
//! as the correlator's inserts return, which costs ClickHouse nothing) and the difference: the
//! consumer lag, in records (consumed-and-not-yet-stored plus not-yet-consumed). At the end:
//! records/s from the first publish to the last stored record, the steady rate (between 10%
//! and 90% stored), the largest lag, and ClickHouse's own `count()` of the run's records
//! (once, to check that every record is there).
//!
//! An earlier version counted the stored records with a `count()` query every second, in the
//! `soc_bench` database that the store benchmark fills with 11.5M events: each count scanned
//! them, and ClickHouse was busy about 15 CPU-seconds per 100,000 records (3-4 per 150,000
//! without the counts), on a machine with two cores (6,860 records/s steady were reported then;
//! 4,300-11,300 with that version in this session, depending on the load). `--count-query`
//! measures that way again (with `--database soc_bench` for the same conditions).
//!
//! Measured (release build, Tansu 0.6 in memory and ClickHouse 18.16 on the same 2-core
//! machine, other builds running at load 4.3-6.4, 150,000 records as fast as they could be
//! published, batches of 5,000, 3 partitions): 7,300-20,000 records/s steady with the counter
//! (6 of 9 runs 13,200-20,000),
//! lag up to 115,000-140,000 records (everything published within 4 s waits); back to back
//! with `--count-query --database soc_bench` 10,300/s (ClickHouse busy 11 CPU-seconds against
//! 3-4). The correlator reports the time per phase (`CorrelatorStats::time`): per 150,000
//! records about 0.3 s polling, 1.5-2.7 s processing, 4-7 s storing the batches and 4.5-8 s
//! publishing detections and grouping incidents (the grouper read each changed incident back
//! from the store, one query after the other); checkpoints 0.2-0.6 s. At 10,000 records/s offered the lag
//! stayed within 15,000-51,000 records.
//!
//! Since the grouper reads the incidents a batch changed in one query (`Store::get_incidents`)
//! and the store reads an alert batch's stored versions while it writes the records: back to
//! back with the previous build, six pairs of runs at load 4.2-6.9 (about 400 incident versions
//! per run; each run adds about 210 incidents to the database, 3,200 after the last): publishing and grouping
//! 2.6-5.2 s per run (previously 5.8-23.5 s, growing with the incidents stored, as each of
//! the per-incident reads did), 8,800-13,600 records/s end to end (previously 4,300-10,700)
//! and 9,600-15,600 steady (previously 5,400-14,400).
//!
//! Flags: `--brokers`, `--clickhouse`, `--database`, `--events`, `--rate` (records/s, 0: as fast as
//! possible), `--partitions`, `--batch`, `--count-query`.

use soc_bus::Bus;
use soc_bus::kafka::{KafkaBus, KafkaConfig};
use soc_correlator::correlation::CorrelationRules;
use soc_correlator::{CorrelatorOptions, SigmaRules};
use soc_model::{Event, EventType, Log, LogSource, Timestamp};
use soc_store::observe::Observed;
use soc_store::{ClickHouseStore, EventQuery, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct Args {
    brokers: String,
    clickhouse: String,
    database: String,
    events: u64,
    rate: u64,
    partitions: i32,
    batch: usize,
    /// Measure progress the old way: a ClickHouse `count()` every second.
    count_query: bool,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        brokers: "127.0.0.1:9092".into(),
        clickhouse: "http://127.0.0.1:8123".into(),
        database: "soc_pipeline_bench".into(),
        events: 100_000,
        rate: 0,
        partitions: 3,
        batch: 5_000,
        count_query: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--brokers" => a.brokers = v()?,
            "--clickhouse" => a.clickhouse = v()?,
            "--database" => a.database = v()?,
            "--events" => a.events = v()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--rate" => a.rate = v()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--partitions" => a.partitions = v()?.parse().map_err(|e| format!("--partitions: {e}"))?,
            "--batch" => a.batch = v()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--count-query" => a.count_query = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// splitmix64: deterministic synthetic data.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn record(i: u64, tag: &str) -> Event {
    let r = mix(i);
    let host = format!("ws-{:03}", r % 200);
    let mut e = Event::new(EventType::Log, Timestamp::now());
    e.host = Some(host.clone());
    e.sensor = Some(tag.to_string());
    e.segment = Some(if r.is_multiple_of(2) { "ministry" } else { "cpnet" }.into());
    let mut fields = serde_json::Map::new();
    fields.insert("Sequence".into(), serde_json::json!(i));
    let kind = (r >> 8) % 100;
    let (logsource, message) = if kind < 2 {
        // sshd password failures: the project's rule and its password-guessing correlation.
        let ls = LogSource { product: Some("linux".into()), service: Some("sshd".into()), category: None };
        (ls, Some(format!("Failed password for user{} from 203.0.113.{} port 22 ssh2", (r >> 16) % 40, r % 250)))
    } else {
        let ls = LogSource { product: Some("windows".into()), service: Some("security".into()), category: None };
        fields.insert("Channel".into(), serde_json::json!("Security"));
        fields.insert("Computer".into(), serde_json::json!(host));
        if kind < 4 {
            // 4688 whoami: the project's rule sees it through the Security pipeline (Image).
            fields.insert("EventID".into(), serde_json::json!(4688));
            fields.insert("NewProcessName".into(), serde_json::json!("C:\\Windows\\System32\\whoami.exe"));
            fields.insert("MandatoryLabel".into(), serde_json::json!("S-1-16-8192"));
            fields.insert("SubjectUserName".into(), serde_json::json!(format!("user{}", (r >> 16) % 40)));
        } else {
            fields.insert("EventID".into(), serde_json::json!(4624));
            fields.insert("TargetUserName".into(), serde_json::json!(format!("user{}", (r >> 16) % 40)));
            fields.insert("IpAddress".into(), serde_json::json!(format!("10.9.{}.{}", (r >> 24) % 4, (r >> 32) % 250)));
            fields.insert("LogonType".into(), serde_json::json!(3));
        }
        (ls, None)
    };
    e.log = Some(Log { logsource, fields, message, ..Log::default() });
    e.ensure_id();
    e
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let tag = format!("bench{started}");
    let mut cfg = KafkaConfig::new(&a.brokers, &tag);
    cfg.partitions = a.partitions;
    let bus = Arc::new(KafkaBus::connect(cfg)?);
    bus.ensure_topics().await?;
    let clickhouse = Arc::new(ClickHouseStore::connect(&a.clickhouse, &a.database, "default", "").await?);
    clickhouse.migrate().await?;
    // The log records of this run whose insert ClickHouse acknowledged.
    let logs = Arc::new(AtomicU64::new(0));
    let store = Arc::new(Observed::new(clickhouse.clone(), {
        let (logs, tag) = (logs.clone(), tag.clone());
        move |events: &[Event]| {
            let n = events
                .iter()
                .filter(|e| e.event_type == EventType::Log && e.sensor.as_deref() == Some(tag.as_str()))
                .count();
            logs.fetch_add(n as u64, Ordering::SeqCst);
        }
    }));

    let (sigma, errs) = SigmaRules::builtin();
    if !errs.is_empty() {
        return Err(format!("built-in rules: {errs:?}").into());
    }
    let sources: Vec<(std::path::PathBuf, String)> = soc_correlator::sigma::builtin::BUILTIN_RULES
        .iter()
        .map(|(p, t)| (std::path::PathBuf::from(p), t.to_string()))
        .collect();
    let (corr, _) = CorrelationRules::from_sources(&sources);
    let state = tempfile::tempdir()?;
    let opts = CorrelatorOptions {
        group: format!("{tag}-correlator"),
        batch: a.batch,
        sigma: Some(Arc::new(sigma)),
        correlations: Some(Arc::new(corr)),
        dedup: Some(soc_correlator::dedup::DedupOptions::default()),
        checkpoint_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    };
    let (stop, stop_rx) = watch::channel(false);
    let correlator = tokio::spawn(soc_correlator::run(bus.clone(), store.clone() as Arc<dyn Store>, opts, stop_rx));

    let published = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bus, published, tag) = (bus.clone(), published.clone(), tag.clone());
        let (n, rate) = (a.events, a.rate);
        tokio::spawn(async move {
            let t0 = Instant::now();
            let chunk = 1_000u64;
            let mut i = 0;
            while i < n {
                let batch: Vec<Event> = (i..(i + chunk).min(n)).map(|j| record(j, &tag)).collect();
                soc_bus::publish_events(bus.as_ref(), &batch).await?;
                i += batch.len() as u64;
                published.store(i, Ordering::Relaxed);
                if rate > 0 {
                    let due = Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            Ok::<Duration, soc_bus::BusError>(t0.elapsed())
        })
    };

    let t0 = Instant::now();
    let q = EventQuery { event_type: Some("log".into()), sensor: Some(tag.clone()), ..Default::default() };
    let (mut max_lag, mut t10, mut t90) = (0u64, None, None);
    let mut last = 0u64;
    println!("{:>6} {:>10} {:>10} {:>8} {:>9}", "secs", "published", "stored", "lag", "stored/s");
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stored = if a.count_query { clickhouse.count_events(&q).await? } else { logs.load(Ordering::SeqCst) };
        let p = published.load(Ordering::Relaxed);
        let lag = p.saturating_sub(stored);
        max_lag = max_lag.max(lag);
        let secs = t0.elapsed().as_secs_f64();
        println!("{secs:>6.1} {p:>10} {stored:>10} {lag:>8} {:>9}", stored - last.min(stored));
        last = stored;
        if t10.is_none() && stored * 10 >= a.events {
            t10 = Some((secs, stored));
        }
        if t90.is_none() && stored * 10 >= a.events * 9 {
            t90 = Some((secs, stored));
        }
        if stored >= a.events {
            break;
        }
        if secs > 3_600.0 {
            return Err("not all records stored within an hour".into());
        }
    }
    let total = t0.elapsed().as_secs_f64();
    let produce = producer.await??;
    let _ = stop.send(true);
    let stats = correlator.await??;
    println!(
        "{} records: published in {:.1} s ({:.0}/s), all stored after {total:.1} s: {:.0} records/s end to end",
        a.events,
        produce.as_secs_f64(),
        a.events as f64 / produce.as_secs_f64(),
        a.events as f64 / total
    );
    if let (Some((s10, n10)), Some((s90, n90))) = (t10, t90)
        && s90 > s10
    {
        println!("steady rate (10% -> 90% stored): {:.0} records/s", (n90 - n10) as f64 / (s90 - s10));
    }
    println!("largest lag: {max_lag} records; correlator: {stats:?}");
    let counted = clickhouse.count_events(&q).await?;
    println!("ClickHouse count() of this run's log records: {counted}");
    if counted != a.events {
        return Err(format!("ClickHouse holds {counted} of the {} records", a.events).into());
    }
    Ok(())
}
