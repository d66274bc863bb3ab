//! The analysts' queries against a large ClickHouse store: seeds a fresh database with
//! synthetic events, alerts and incidents spread over a week, then times the queries behind
//! the dashboard's main screens (p50/p95 over repeated runs).
//!
//! ```sh
//! deploy/clickhouse.sh start
//! cargo run --release -p soc-tests --example store_bench -- \
//!     --url http://127.0.0.1:8123 --events 10000000 --alerts 1000000 --incidents 20000
//! ```
//!
//! Seeding: `--events` network records (flow/dns/http/tls, uniform over the last 7 days, two
//! segments, 20 sensors, 5,000 source addresses) and `--alerts` Suricata alert records (400
//! rules, severities 1-3; half of all records with a GeoIP enrichment of the destination) are
//! generated deterministically (splitmix64 of the sequence number)
//! and written with `Store::insert_events` in batches of 100,000, so the store projects the
//! alerts into the `alerts` table exactly as in production; `--triage` alerts (default 1,000)
//! are then acknowledged with `Store::update_alert` (a row of `alert_state`), and
//! `--incidents` incidents are upserted in batches of 10,000.
//!
//! The database (`soc_bench` unless `--database`) is dropped first and kept afterwards so the
//! queries can be repeated with `--no-seed` (which first applies any newer migration).

use soc_model::{Alert, Event, EventType, Incident, IncidentStatus, Level, Timestamp};
use soc_store::search::{Column, Expr, Field, Op, SearchQuery};
use soc_store::{
    AlertPage, AlertQuery, AlertSort, AlertState, ClickHouseStore, CountBy, EventQuery, IncidentQuery, Store, Summary,
    SummaryQuery,
};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    database: String,
    events: u64,
    alerts: u64,
    incidents: u64,
    triage: u64,
    seed: bool,
    reps: usize,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:8123".into(),
        database: "soc_bench".into(),
        events: 1_000_000,
        alerts: 100_000,
        incidents: 5_000,
        triage: 1_000,
        seed: true,
        reps: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--url" => a.url = v()?,
            "--database" => a.database = v()?,
            "--events" => a.events = v()?.parse().map_err(|e| format!("--events: {e}"))?,
            "--alerts" => a.alerts = v()?.parse().map_err(|e| format!("--alerts: {e}"))?,
            "--incidents" => a.incidents = v()?.parse().map_err(|e| format!("--incidents: {e}"))?,
            "--triage" => a.triage = v()?.parse().map_err(|e| format!("--triage: {e}"))?,
            "--reps" => a.reps = v()?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--no-seed" => a.seed = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

const WEEK_US: i64 = 7 * 86_400 * 1_000_000;
const SEGMENTS: [&str; 2] = ["ministry", "cpnet"];
const COUNTRIES: [&str; 5] = ["VN", "SG", "US", "CN", "RU"];
const TYPES: [EventType; 4] = [EventType::Flow, EventType::Dns, EventType::Http, EventType::Tls];

fn ip(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// A deterministic pseudo-random stream (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn event(i: u64, start: i64, alert: bool) -> Event {
    let r = mix(i);
    let ts = Timestamp::from_unix_micros(start + (r % WEEK_US as u64) as i64);
    let t = if alert { EventType::Alert } else { TYPES[(r >> 8) as usize % TYPES.len()].clone() };
    let mut e = Event::new(t, ts);
    e.segment = Some(SEGMENTS[(r >> 12) as usize % 2].into());
    e.sensor = Some(format!("sensor-{}", (r >> 16) % 20));
    e.src_ip = Some(ip((r >> 20) % 5_000));
    e.dest_ip = Some(format!("203.0.113.{}", (r >> 36) % 250));
    e.src_port = Some(((r >> 40) % 60_000) as u16 + 1024);
    e.dest_port = Some([53u16, 80, 443, 445][(r >> 50) as usize % 4]);
    e.proto = Some("TCP".into());
    e.flow_id = Some(r >> 1);
    e.community_id = Some(format!("1:{:x}", r >> 3));
    if alert {
        let sid = 2_000_000 + (r >> 44) % 400;
        e.alert = Some(Alert {
            signature_id: Some(sid),
            signature: Some(format!("ET BENCH rule {sid}")),
            severity: Some(((r >> 52) % 3) as u8 + 1),
            category: Some("A Network Trojan was Detected".into()),
            ..Alert::default()
        });
    }
    if (r >> 60) & 1 == 0 {
        // Half the records carry the correlator's GeoIP enrichment of the destination.
        let c = (r >> 56) as usize % 5;
        e.extra.insert(
            "geoip".into(),
            serde_json::json!({"dest_ip": {"country_iso": COUNTRIES[c], "asn": 15_169 + c as u64}}),
        );
    }
    e.extra.insert("seq".into(), i.into());
    e.ensure_id();
    e
}

fn incident(i: u64, start: i64) -> Incident {
    let r = mix(i ^ 0xabcdef);
    let first = start + (r % WEEK_US as u64) as i64;
    Incident {
        incident_id: format!("inc-bench-{i}"),
        version: 1 + r % 4,
        title: format!("bench incident {i}"),
        severity: [Level::Low, Level::Medium, Level::High, Level::Critical][(r >> 8) as usize % 4],
        status: [IncidentStatus::New, IncidentStatus::Acknowledged, IncidentStatus::Resolved][(r >> 10) as usize % 3],
        entities: vec![format!("ip:{}", ip((r >> 20) % 5_000))],
        segments: vec![SEGMENTS[(r >> 12) as usize % 2].into()],
        alert_count: 1 + (r >> 30) % 50,
        first_seen: Some(Timestamp::from_unix_micros(first)),
        last_seen: Some(Timestamp::from_unix_micros(first + 600_000_000)),
        updated: Some(Timestamp::from_unix_micros(first + 600_000_000)),
        ..Incident::default()
    }
}

async fn time<F, Fut, T>(name: &str, reps: usize, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, soc_store::StoreError>>,
    T: Len,
{
    let mut times = Vec::with_capacity(reps);
    let mut rows = 0;
    for _ in 0..reps {
        let t = Instant::now();
        match f().await {
            Ok(v) => rows = v.len(),
            Err(e) => {
                println!("{name:<48} failed: {e}");
                return;
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!("{name:<48} rows {rows:>6}   p50 {:>8.1} ms   p95 {:>8.1} ms", ms(p(0.5)), ms(p(0.95)));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

trait Len {
    fn len(&self) -> usize;
}
impl<T> Len for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
}
impl Len for AlertPage {
    fn len(&self) -> usize {
        self.items.len()
    }
}
impl Len for Summary {
    fn len(&self) -> usize {
        self.by_type_segment.len()
    }
}
impl Len for soc_store::search::SearchResult {
    fn len(&self) -> usize {
        match self {
            soc_store::search::SearchResult::Events(v) => v.len(),
            soc_store::search::SearchResult::Counts(v) => v.len(),
        }
    }
}
impl Len for u64 {
    fn len(&self) -> usize {
        *self as usize
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let store = ClickHouseStore::connect(&a.url, &a.database, "", "").await?;
    let now = Timestamp::now().unix_micros();
    let start = now - WEEK_US;
    if a.seed {
        store.drop_database().await?;
        let store2 = ClickHouseStore::connect(&a.url, &a.database, "", "").await?;
        store2.migrate().await?;
        let t = Instant::now();
        let batch = 100_000u64;
        for (kind, total, alert) in [("events", a.events, false), ("alerts", a.alerts, true)] {
            let mut done = 0;
            while done < total {
                let n = batch.min(total - done);
                let base = if alert { 1u64 << 40 } else { 0 };
                let evs: Vec<Event> = (done..done + n).map(|i| event(base + i, start, alert)).collect();
                store2.insert_events(&evs).await?;
                done += n;
            }
            println!("seeded {total} {kind} in {:.1} s", t.elapsed().as_secs_f64());
        }
        let acked = AlertState { status: "acknowledged".into(), owner: Some("bench".into()), ..AlertState::default() };
        for i in 0..a.triage {
            let e = event((1u64 << 40) + i * 97 % a.alerts.max(1), start, true);
            store2.update_alert(e.id.as_deref().unwrap_or_default(), &acked).await?;
        }
        println!("triaged {} alerts in {:.1} s", a.triage, t.elapsed().as_secs_f64());
        let incs: Vec<Incident> = (0..a.incidents).map(|i| incident(i, start)).collect();
        for c in incs.chunks(10_000) {
            store2.upsert_incidents(c).await?;
        }
        println!("seeded {} incidents; total {:.1} s", a.incidents, t.elapsed().as_secs_f64());
    }
    let store = ClickHouseStore::connect(&a.url, &a.database, "", "").await?;
    // A database seeded by an older build gets the newer migrations (they move stored state).
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        println!("applied migrations {applied:?}");
    }
    let day = Timestamp::from_unix_micros(now - 86_400_000_000);
    println!("server {}; {} repetitions per query", store.server_version().text, a.reps);
    let week = Timestamp::from_unix_micros(start);
    // The alert queue (`GET /api/alerts`): a page of 50 and the total, from the alerts table.
    let aq = AlertQuery { limit: 50, descending: true, ..Default::default() };
    time("alert queue, first page + total, whole week", a.reps, || store.query_alerts(&aq)).await;
    let aq1 = AlertQuery { since: Some(day), ..aq.clone() };
    time("alert queue, first page + total, last 24 h", a.reps, || store.query_alerts(&aq1)).await;
    let aq2 = AlertQuery { segments: Some(vec!["cpnet".into()]), ..aq1.clone() };
    time("alert queue, cpnet scope, last 24 h", a.reps, || store.query_alerts(&aq2)).await;
    let aq3 = AlertQuery { statuses: Some(vec!["new".into()]), ..aq1.clone() };
    time("alert queue, status new, last 24 h", a.reps, || store.query_alerts(&aq3)).await;
    let aq3w = AlertQuery { statuses: Some(vec!["new".into()]), ..aq.clone() };
    time("alert queue, status new, whole week", a.reps, || store.query_alerts(&aq3w)).await;
    let aq3c = AlertQuery { statuses: Some(vec!["new".into()]), segments: Some(vec!["cpnet".into()]), ..aq.clone() };
    time("alert queue, status new, cpnet, whole week", a.reps, || store.query_alerts(&aq3c)).await;
    let aq3a = AlertQuery { statuses: Some(vec!["acknowledged".into()]), ..aq.clone() };
    time("alert queue, acknowledged, whole week", a.reps, || store.query_alerts(&aq3a)).await;
    let aq2w = AlertQuery { segments: Some(vec!["cpnet".into()]), ..aq.clone() };
    time("alert queue, cpnet scope, whole week", a.reps, || store.query_alerts(&aq2w)).await;
    let aq4 = AlertQuery {
        severities: Some(vec![soc_model::Level::High]),
        rule: Some("rule 20000".into()),
        sort: AlertSort::Severity,
        ..aq1.clone()
    };
    time("alert queue, high + rule text, by severity, 24 h", a.reps, || store.query_alerts(&aq4)).await;
    let aq5 = AlertQuery { offset: 5_000, ..aq1.clone() };
    time("alert queue, page 101, last 24 h", a.reps, || store.query_alerts(&aq5)).await;
    let q = EventQuery { event_type: Some("alert".into()), limit: 50, newest_first: true, ..Default::default() };
    time("alert records, 50 newest (events table)", a.reps, || store.query_events(&q)).await;
    let q3 = EventQuery { event_type: Some("alert".into()), since: Some(day), ..Default::default() };
    time("alert count, last 24 h", a.reps, || store.count_events(&q3)).await;
    let iq = IncidentQuery { limit: 50, ..Default::default() };
    time("incident list, first page", a.reps, || store.query_incidents(&iq)).await;
    let iq2 = IncidentQuery {
        status: Some(vec![IncidentStatus::New]),
        segments: Some(vec!["ministry".into()]),
        limit: 50,
        ..Default::default()
    };
    time("incident list, new, ministry scope", a.reps, || store.query_incidents(&iq2)).await;
    let q4 = EventQuery { ip: Some(ip(1234)), since: Some(day), limit: 1000, newest_first: true, ..Default::default() };
    time("search: one host's records, last 24 h", a.reps, || store.query_events(&q4)).await;
    let sq = SearchQuery {
        base: EventQuery { since: Some(day), limit: 100, newest_first: true, ..Default::default() },
        filter: Some(Expr::And(vec![
            Expr::Cmp { field: Field::AnyIp, op: Op::Eq, value: ip(1234) },
            Expr::Cmp { field: Field::Column(Column::DestPort), op: Op::Eq, value: "443".into() },
        ])),
        count_by: None,
    };
    time("search: ip:X AND dest_port:443, last 24 h", a.reps, || store.search(&sq)).await;
    let sq2 = SearchQuery {
        base: EventQuery { since: Some(week), limit: 100, newest_first: true, ..Default::default() },
        filter: Some(Expr::Cmp { field: Field::Column(Column::SrcIp), op: Op::Eq, value: ip(77) }),
        count_by: None,
    };
    time("search: src_ip:X, whole week", a.reps, || store.search(&sq2)).await;
    let q5 = EventQuery { since: Some(day), ..Default::default() };
    time("statistics: events per type, last 24 h", a.reps, || store.count_by(CountBy::EventType, &q5)).await;
    let q6 = EventQuery::default();
    time("statistics: events per segment, whole week", a.reps, || store.count_by(CountBy::Segment, &q6)).await;
    // The statistics page (`GET /api/stats`): every chart.
    let s1 = SummaryQuery {
        base: EventQuery { since: Some(day), ..Default::default() },
        bucket_micros: 3_600_000_000,
        top: 10,
    };
    time("statistics page, last 24 h", a.reps, || store.summary(&s1)).await;
    let s2 = SummaryQuery {
        base: EventQuery { since: Some(week), ..Default::default() },
        bucket_micros: 86_400_000_000,
        top: 10,
    };
    time("statistics page, whole week", a.reps, || store.summary(&s2)).await;
    let s3 = SummaryQuery {
        base: EventQuery { since: Some(week), segments: Some(vec!["cpnet".into()]), ..Default::default() },
        ..s2.clone()
    };
    time("statistics page, whole week, cpnet scope", a.reps, || store.summary(&s3)).await;
    Ok(())
}
