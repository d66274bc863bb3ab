//! One behaviour suite for every [`Store`] implementation.
//!
//! [`run_all`] is run unchanged against SQLite (unit tests of this crate) and against a real
//! ClickHouse (`tests/clickhouse_store.rs`), so the two backends are interchangeable: same
//! filters, same ordering (time, then id), same counts, same retention, same round trip of
//! the stored JSON. Expected results come from an in-memory oracle ([`matches()`] and
//! [`expected`]) applied to the events the suite inserted.
//!
//! The suite needs an empty store (a fresh file or database): it checks that first, and
//! its retention steps drop whole days. Sensor names carry a per-run tag.
//! Each check panics with `[store] check: what differs`.

use crate::{
    AlertQuery, AlertRecord, AlertSort, AlertState, CountBy, EventQuery, IncidentQuery, MAX_LIMIT, Store, StoreError,
    SummaryQuery, Suppression,
};
use serde_json::{Value, json};
use soc_model::{Event, EventType, ForwardState, Forwarding, Incident, IncidentStatus, Level, Timestamp};
use std::collections::{BTreeMap, HashMap};

/// First UTC day of the data set: 2024-03-10.
pub const BASE_DAY: i64 = 19_792;
/// Events per small day (three days: `BASE_DAY` .. `BASE_DAY + 2`).
const PER_DAY: usize = 30;
/// The day of the large batch.
const BULK_DAY: i64 = BASE_DAY + 10;
/// Rows in the large batch (inserted in one call).
pub const BULK: usize = 20_000;

const DAY_US: i64 = 86_400_000_000;

/// Runs every check against `store`. Panics on the first failure.
pub async fn run_all(store: &dyn Store) {
    let name = store.name();
    let tag = run_tag();
    let ctx = Ctx { store, name };

    ctx.ok("ping", store.ping().await);
    // Migrations: whatever the first call applies, the second applies nothing.
    let first = ctx.ok("migrate", store.migrate().await);
    let second = ctx.ok("migrate again", store.migrate().await);
    ctx.check(second.is_empty(), "migrate twice", format!("second run applied {second:?} (first applied {first:?})"));
    let before = ctx.ok("count on empty store", store.count_events(&EventQuery::default()).await);
    ctx.check(
        before == 0,
        "empty store",
        format!("the suite needs an empty store (a fresh database or file); found {before} events"),
    );

    let events = small_set(&tag);
    insert_and_reinsert(&ctx, &events).await;
    missing_ids(&ctx, &tag, events.len() as u64).await;
    round_trip(&ctx, &events).await;
    time_ranges(&ctx, &events).await;
    filters(&ctx, &events, &tag).await;
    limits_and_order(&ctx, &events).await;
    counts(&ctx, &events, &tag).await;
    let bulk = large_batch(&ctx, &tag, events.len() as u64).await;
    retention(&ctx, &events, &bulk).await;
    incidents(&ctx, &tag).await;
    incident_batches(&ctx, &tag).await;
    forwarding(&ctx, &tag).await;
    crate::search::conformance(store).await;
    alerts(&ctx, &tag).await;
    summary(&ctx, &tag).await;
    recent_pages(&ctx, &tag).await;
}

struct Ctx<'a> {
    store: &'a dyn Store,
    name: &'static str,
}

impl Ctx<'_> {
    fn ok<T>(&self, check: &str, r: Result<T, StoreError>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("[{}] {check}: store error: {e}", self.name),
        }
    }
    fn check(&self, cond: bool, check: &str, msg: impl std::fmt::Display) {
        if !cond {
            panic!("[{}] {check}: {msg}", self.name);
        }
    }
    fn eq<T: PartialEq + std::fmt::Debug>(&self, check: &str, got: T, want: T) {
        if got != want {
            panic!("[{}] {check}:\n   got: {got:?}\n  want: {want:?}", self.name);
        }
    }
    /// Like `eq` for lists, but reports the lengths and the first difference only.
    fn same_list<T: PartialEq + std::fmt::Debug>(&self, check: &str, got: &[T], want: &[T]) {
        if got == want {
            return;
        }
        let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        let window = |v: &[T]| format!("{:?}", &v[first.min(v.len())..(first + 2).min(v.len())]);
        panic!(
            "[{}] {check}: lists differ (got {} items, want {}), first difference at index {first}:\n   got: {}\n  want: {}",
            self.name,
            got.len(),
            want.len(),
            window(got),
            window(want)
        );
    }
    async fn count(&self, check: &str, q: &EventQuery) -> u64 {
        self.ok(check, self.store.count_events(q).await)
    }
    async fn query(&self, check: &str, q: &EventQuery) -> Vec<Event> {
        self.ok(check, self.store.query_events(q).await)
    }
    /// Compares a query (ids in order, then whole events) and its count with the oracle.
    async fn same_as_oracle(&self, check: &str, q: &EventQuery, all: &[Event]) -> Vec<Event> {
        let want = expected(q, all);
        let got = self.query(check, q).await;
        self.same_list(&format!("{check} (ids, in order)"), &ids(&got), &ids(&want));
        self.same_list(&format!("{check} (events)"), &got, &want);
        let n = all.iter().filter(|e| matches(q, e)).count() as u64;
        self.eq(&format!("{check} (count_events)"), self.count(check, q).await, n);
        got
    }
}

fn run_tag() -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("conf{}_{}", std::process::id(), t % 1_000_000_000_000)
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_deref().unwrap_or("<none>")).collect()
}

/// Whether `e` matches the filters of `q` (the oracle of the stores' `WHERE`).
pub fn matches(q: &EventQuery, e: &Event) -> bool {
    let eq = |want: &Option<String>, have: &Option<String>| want.as_ref().is_none_or(|w| have.as_ref() == Some(w));
    q.event_type.as_ref().is_none_or(|t| e.event_type.as_str() == t)
        && q.since.is_none_or(|s| e.timestamp.unix_micros() >= s.unix_micros())
        && q.until.is_none_or(|u| e.timestamp.unix_micros() < u.unix_micros())
        && q.segments.as_ref().is_none_or(|segs| e.segment.as_ref().is_some_and(|s| segs.contains(s)))
        && eq(&q.sensor, &e.sensor)
        && eq(&q.host, &e.host)
        && q.ip.as_ref().is_none_or(|ip| e.src_ip.as_ref() == Some(ip) || e.dest_ip.as_ref() == Some(ip))
        && q.flow_id.is_none_or(|f| e.flow_id == Some(f))
        && eq(&q.community_id, &e.community_id)
}

/// What `query_events(q)` must return from a store holding exactly `all`.
pub fn expected(q: &EventQuery, all: &[Event]) -> Vec<Event> {
    let mut v: Vec<Event> = all.iter().filter(|e| matches(q, e)).cloned().collect();
    v.sort_by(|a, b| (a.timestamp.unix_micros(), a.id.as_deref()).cmp(&(b.timestamp.unix_micros(), b.id.as_deref())));
    if q.newest_first {
        v.reverse();
    }
    v.truncate(q.effective_limit());
    v
}

/// What `count_by(by, q)` must return from a store holding exactly `all`.
pub fn expected_counts(by: CountBy, q: &EventQuery, all: &[Event]) -> Vec<(String, u64)> {
    let mut m: BTreeMap<String, u64> = BTreeMap::new();
    for e in all.iter().filter(|e| matches(q, e)) {
        let k = match by {
            CountBy::EventType => e.event_type.as_str().to_string(),
            CountBy::Segment => e.segment.clone().unwrap_or_default(),
        };
        *m.entry(k).or_default() += 1;
    }
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn micros(day: i64, offset_us: i64) -> Timestamp {
    Timestamp::from_unix_micros(day * DAY_US + offset_us)
}

/// Builds an event from EVE-style JSON (so unknown fields land in `extra`) and sets its id.
fn event(v: Value) -> Event {
    let mut e: Event = match serde_json::from_value(v.clone()) {
        Ok(e) => e,
        Err(err) => panic!("conformance data set: {v} is not an Event: {err}"),
    };
    e.ensure_id();
    e
}

/// The small data set: three days of mixed types, segments, sensors, hosts, IPs and flows,
/// with unknown fields, a shared timestamp (ordering ties), a `+0700` timestamp that falls
/// on the previous UTC day and a flow id above `i64::MAX`.
fn small_set(tag: &str) -> Vec<Event> {
    let types = ["flow", "dns", "alert", "http", "smb"];
    let segments = [Some("ministry"), Some("cpnet"), None];
    let mut out = Vec::new();
    for i in 0..(3 * PER_DAY) {
        let day = BASE_DAY + (i / PER_DAY) as i64;
        let slot = (i % PER_DAY) as i64;
        // 45 minutes apart within the day; events 3 and 4 share their timestamp.
        let t = if i == 4 { micros(day, 3 * 2_700_000_000 + 123) } else { micros(day, slot * 2_700_000_000 + 123) };
        let ty = types[i % types.len()];
        let dest_port = [53u16, 80, 443][i % 3];
        let mut v = json!({
            "timestamp": t.to_string(),
            "event_type": ty,
            "flow_id": 1000 + (i / 2) as u64,
            "src_ip": format!("10.0.{}.{}", i % 7, i % 11),
            "src_port": 40000 + i as u16,
            "dest_ip": format!("192.168.1.{}", i % 5),
            "dest_port": dest_port,
            "proto": if i % 2 == 0 { "TCP" } else { "UDP" },
            "community_id": format!("1:conf{}", i / 3),
            "sensor": format!("{tag}-s{}", i % 2),
            // Unknown to the model: must come back verbatim.
            "pcap_cnt": i * 7,
            "conformance": {"run": tag, "seq": i, "nested": [1, "two", null, {"x": 1.5}], "big": u64::MAX},
        });
        if let Some(s) = segments[i % 3] {
            v["segment"] = json!(s);
        }
        if i % 2 == 0 {
            v["host"] = json!(format!("host{}", i % 4));
        }
        match ty {
            "dns" => {
                v["dns"] = json!({"type": "request", "id": i, "queries": [{"rrname": format!("q{i}.example.org"), "rrtype": "A"}], "x_unknown": true})
            }
            "alert" => {
                v["alert"] = json!({"action": "allowed", "gid": 1, "signature_id": 2_000_000 + i, "rev": 1, "signature": format!("CONF test {i}"), "category": "Misc", "severity": 2, "metadata": {"k": ["v"]}})
            }
            "http" => {
                v["http"] =
                    json!({"hostname": "example.org", "url": format!("/p/{i}"), "http_method": "GET", "status": 200})
            }
            "smb" => v["smb"] = json!({"id": i, "command": "SMB2_COMMAND_CREATE"}),
            _ => {
                v["flow"] = json!({"pkts_toserver": i, "pkts_toclient": 1, "bytes_toserver": 100, "bytes_toclient": 200, "start": t.to_string()})
            }
        }
        out.push(event(v));
    }
    // Local time +0700 on BASE_DAY + 1 is 22:30 UTC on BASE_DAY: stored on BASE_DAY.
    let local: Timestamp = match "2024-03-11T05:30:00.000001+0700".parse() {
        Ok(t) => t,
        Err(e) => panic!("conformance data set: {e}"),
    };
    assert_eq!(local.unix_day(), BASE_DAY, "conformance data set: BASE_DAY is 2024-03-10");
    out.push(event(json!({
        "timestamp": local.to_string(), "event_type": "log", "host": "dc01", "segment": "ministry",
        "sensor": format!("{tag}-collector"), "log": {"message": "user logon"}, "syslog_facility": 4
    })));
    // A flow id above i64::MAX (SQLite stores it bit-cast).
    out.push(event(json!({
        "timestamp": micros(BASE_DAY + 1, 1).to_string(), "event_type": "flow", "flow_id": u64::MAX - 5,
        "src_ip": "172.16.0.1", "dest_ip": "172.16.0.2", "segment": "cpnet", "sensor": format!("{tag}-s0")
    })));
    out
}

async fn insert_and_reinsert(ctx: &Ctx<'_>, events: &[Event]) {
    let n = events.len() as u64;
    let all = EventQuery::default();
    ctx.ok("insert an empty batch", ctx.store.insert_events(&[]).await);
    // First half, then everything (overlapping), then everything again.
    let half = events.len() / 2;
    ctx.ok("insert first half", ctx.store.insert_events(&events[..half]).await);
    ctx.eq("count after first half", ctx.count("count", &all).await, half as u64);
    ctx.ok("insert overlapping batch", ctx.store.insert_events(events).await);
    ctx.eq("count after overlapping batch (ids stored once)", ctx.count("count", &all).await, n);
    ctx.ok("re-insert the same batch", ctx.store.insert_events(events).await);
    ctx.eq("count after re-inserting the same batch (unchanged)", ctx.count("count", &all).await, n);
    let got = ctx.query("query after re-insert", &EventQuery { limit: MAX_LIMIT, ..Default::default() }).await;
    ctx.eq("rows after re-insert (no duplicates returned)", got.len() as u64, n);
}

async fn missing_ids(ctx: &Ctx<'_>, tag: &str, stored: u64) {
    let mut fresh = Event::new(soc_model::EventType::Log, micros(BASE_DAY, 1));
    fresh.sensor = Some(format!("{tag}-noid"));
    let without = fresh.clone();
    fresh.ensure_id();
    let mut empty = without.clone();
    empty.id = Some(String::new());
    for (what, batch) in
        [("event without id", vec![fresh.clone(), without]), ("event with empty id", vec![fresh, empty])]
    {
        match ctx.store.insert_events(&batch).await {
            Err(StoreError::MissingId) => {}
            other => ctx.check(false, what, format!("want Err(MissingId), got {other:?}")),
        }
        ctx.eq(
            &format!("{what}: nothing of the batch is stored"),
            ctx.count("count", &EventQuery::default()).await,
            stored,
        );
    }
}

async fn round_trip(ctx: &Ctx<'_>, events: &[Event]) {
    let got = ctx.query("read everything", &EventQuery { limit: MAX_LIMIT, ..Default::default() }).await;
    let by_id: HashMap<&str, &Event> = got.iter().filter_map(|e| e.id.as_deref().map(|id| (id, e))).collect();
    for want in events {
        let id = want.id.as_deref().unwrap_or_default();
        let Some(have) = by_id.get(id) else {
            panic!("[{}] round trip: event {id} was inserted but is not returned", ctx.name);
        };
        ctx.eq(&format!("round trip of event {id}"), *have, want);
        let (hv, wv) = (serde_json::to_value(have).unwrap_or_default(), serde_json::to_value(want).unwrap_or_default());
        ctx.eq(&format!("round trip of event {id} (JSON, unknown fields included)"), hv, wv);
        ctx.eq(&format!("offset kept for event {id}"), have.timestamp.offset_secs(), want.timestamp.offset_secs());
    }
}

async fn time_ranges(ctx: &Ctx<'_>, events: &[Event]) {
    let all = events;
    // [since, until) with both bounds on exact event timestamps: since included, until excluded.
    let since = micros(BASE_DAY, 5 * 2_700_000_000 + 123);
    let until = micros(BASE_DAY + 1, 7 * 2_700_000_000 + 123);
    let q = EventQuery { since: Some(since), until: Some(until), limit: MAX_LIMIT, ..Default::default() };
    let got = ctx.same_as_oracle("time range [since, until)", &q, all).await;
    ctx.check(got.iter().any(|e| e.timestamp == since), "time range", "an event exactly at `since` must be included");
    ctx.check(got.iter().all(|e| e.timestamp != until), "time range", "an event exactly at `until` must be excluded");
    // One microsecond later excludes the event at `since`.
    let q2 = EventQuery { since: Some(since.add_micros(1)), ..q.clone() };
    ctx.same_as_oracle("time range, since + 1 µs", &q2, all).await;
    // Only since, only until, an empty range and a range before everything.
    ctx.same_as_oracle("since only", &EventQuery { since: Some(until), limit: MAX_LIMIT, ..Default::default() }, all)
        .await;
    ctx.same_as_oracle("until only", &EventQuery { until: Some(since), limit: MAX_LIMIT, ..Default::default() }, all)
        .await;
    let empty = EventQuery { since: Some(until), until: Some(since), ..Default::default() };
    ctx.eq("inverted range is empty", ctx.query("inverted", &empty).await.len(), 0);
    let before = EventQuery { until: Some(micros(BASE_DAY, 0)), ..Default::default() };
    ctx.eq("range before all data is empty", ctx.count("before", &before).await, 0);
    // A whole UTC day, which includes the +0700 event written on the next local day.
    let day = EventQuery {
        since: Some(micros(BASE_DAY, 0)),
        until: Some(micros(BASE_DAY + 1, 0)),
        limit: MAX_LIMIT,
        ..Default::default()
    };
    let got = ctx.same_as_oracle("one UTC day", &day, all).await;
    ctx.check(got.iter().any(|e| e.timestamp.offset_secs() == 7 * 3600), "one UTC day", "must include the +0700 event");
}

async fn filters(ctx: &Ctx<'_>, all: &[Event], tag: &str) {
    let base = EventQuery { limit: MAX_LIMIT, ..Default::default() };
    let some = |s: &str| Some(s.to_string());
    let cases: Vec<(&str, EventQuery)> = vec![
        ("event_type = dns", EventQuery { event_type: some("dns"), ..base.clone() }),
        ("event_type = smb (not a known type)", EventQuery { event_type: some("smb"), ..base.clone() }),
        ("event_type unknown", EventQuery { event_type: some("nope"), ..base.clone() }),
        ("segments [ministry]", EventQuery { segments: Some(vec!["ministry".into()]), ..base.clone() }),
        (
            "segments [ministry, cpnet]",
            EventQuery { segments: Some(vec!["ministry".into(), "cpnet".into()]), ..base.clone() },
        ),
        ("segments [] (empty scope)", EventQuery { segments: Some(vec![]), ..base.clone() }),
        ("segments [unknown]", EventQuery { segments: Some(vec!["elsewhere".into()]), ..base.clone() }),
        ("sensor", EventQuery { sensor: Some(format!("{tag}-s1")), ..base.clone() }),
        ("host", EventQuery { host: some("host2"), ..base.clone() }),
        ("host dc01", EventQuery { host: some("dc01"), ..base.clone() }),
        ("ip as source", EventQuery { ip: some("10.0.3.3"), ..base.clone() }),
        ("ip as destination", EventQuery { ip: some("192.168.1.2"), ..base.clone() }),
        ("ip on both sides", EventQuery { ip: some("172.16.0.2"), ..base.clone() }),
        ("flow_id", EventQuery { flow_id: Some(1007), ..base.clone() }),
        ("flow_id above i64::MAX", EventQuery { flow_id: Some(u64::MAX - 5), ..base.clone() }),
        ("community_id", EventQuery { community_id: some("1:conf4"), ..base.clone() }),
        (
            "combined: type + scope + time + sensor",
            EventQuery {
                event_type: some("flow"),
                segments: Some(vec!["cpnet".into(), "ministry".into()]),
                since: Some(micros(BASE_DAY, 3_600_000_000)),
                until: Some(micros(BASE_DAY + 2, 3_600_000_000)),
                sensor: Some(format!("{tag}-s0")),
                ..base.clone()
            },
        ),
        (
            "combined: ip + community_id (no match)",
            EventQuery { ip: some("10.0.0.0"), community_id: some("1:conf29"), ..base.clone() },
        ),
    ];
    for (name, q) in cases {
        let got = ctx.same_as_oracle(&format!("filter {name}"), &q, all).await;
        // Guard against a vacuous oracle: the cases that must match something do.
        let must_match = !(name.contains("unknown") || name.contains("empty") || name.contains("no match"));
        ctx.check(
            !must_match || !got.is_empty(),
            &format!("filter {name}"),
            "the data set has matches but none came back",
        );
    }
    // The u64 flow id above i64::MAX matches exactly one event.
    let q = EventQuery { flow_id: Some(u64::MAX - 5), ..base };
    ctx.eq("flow_id above i64::MAX matches one", ctx.count("count", &q).await, 1);
}

async fn limits_and_order(ctx: &Ctx<'_>, all: &[Event]) {
    for newest_first in [true, false] {
        for limit in [1usize, 5, 37] {
            let q = EventQuery { limit, newest_first, ..Default::default() };
            let got = ctx.same_as_oracle(&format!("limit {limit}, newest_first {newest_first}"), &q, all).await;
            ctx.eq(&format!("limit {limit}: row count"), got.len(), limit);
        }
        // The count ignores the limit.
        let q = EventQuery { limit: 3, newest_first, ..Default::default() };
        ctx.eq("count_events ignores limit", ctx.count("count", &q).await, all.len() as u64);
        // Ties on the timestamp are ordered by id, the same way in every store.
        let got = ctx.query("full order", &EventQuery { newest_first, ..Default::default() }).await;
        let want = expected(&EventQuery { newest_first, ..Default::default() }, all);
        ctx.same_list(&format!("order with ties, newest_first {newest_first}"), &ids(&got), &ids(&want));
        ctx.check(
            got.windows(2).all(|w| {
                if newest_first { w[0].timestamp >= w[1].timestamp } else { w[0].timestamp <= w[1].timestamp }
            }),
            "ordering",
            format!("events not sorted by time (newest_first {newest_first})"),
        );
    }
}

async fn counts(ctx: &Ctx<'_>, all: &[Event], tag: &str) {
    let queries = [
        ("all", EventQuery::default()),
        ("sensor s0", EventQuery { sensor: Some(format!("{tag}-s0")), ..Default::default() }),
        (
            "day 2",
            EventQuery {
                since: Some(micros(BASE_DAY + 1, 0)),
                until: Some(micros(BASE_DAY + 2, 0)),
                ..Default::default()
            },
        ),
        ("scope cpnet", EventQuery { segments: Some(vec!["cpnet".into()]), ..Default::default() }),
        ("nothing", EventQuery { event_type: Some("nope".into()), ..Default::default() }),
    ];
    for (name, q) in &queries {
        for by in [CountBy::EventType, CountBy::Segment] {
            let got = ctx.ok("count_by", ctx.store.count_by(by, q).await);
            let want = expected_counts(by, q, all);
            ctx.same_list(&format!("count_by {by:?} ({name}), largest first"), &got, &want);
        }
        let total: u64 = expected_counts(CountBy::EventType, q, all).iter().map(|(_, c)| c).sum();
        ctx.eq(&format!("count_events ({name})"), ctx.count("count", q).await, total);
    }
    let by_segment = ctx.ok("count_by", ctx.store.count_by(CountBy::Segment, &EventQuery::default()).await);
    ctx.check(
        by_segment.iter().any(|(k, _)| k.is_empty()),
        "count_by Segment",
        "events without a segment are counted under \"\"",
    );
}

async fn large_batch(ctx: &Ctx<'_>, tag: &str, small: u64) -> Vec<Event> {
    let sensor = format!("{tag}-bulk");
    let mut bulk = Vec::with_capacity(BULK);
    for i in 0..BULK {
        let mut e = Event::new(soc_model::EventType::Flow, micros(BULK_DAY, i as i64 * 4_000_000));
        e.sensor = Some(sensor.clone());
        e.segment = Some("bulk".into());
        e.flow_id = Some(i as u64);
        e.src_ip = Some(format!("10.1.{}.{}", i / 256 % 256, i % 256));
        e.dest_ip = Some("10.2.0.1".into());
        e.extra.insert("seq".into(), json!(i));
        e.ensure_id();
        bulk.push(e);
    }
    let started = std::time::Instant::now();
    ctx.ok("large batch insert (one call)", ctx.store.insert_events(&bulk).await);
    let took = started.elapsed();
    let q = EventQuery { sensor: Some(sensor), ..Default::default() };
    ctx.eq("large batch: all rows stored", ctx.count("count", &q).await, BULK as u64);
    ctx.ok("large batch re-insert", ctx.store.insert_events(&bulk).await);
    ctx.eq("large batch: re-insert stores nothing new", ctx.count("count", &q).await, BULK as u64);
    ctx.eq("total after large batch", ctx.count("count", &EventQuery::default()).await, small + BULK as u64);
    // The limit is capped at MAX_LIMIT; 0 means MAX_LIMIT.
    for limit in [0, MAX_LIMIT + 1, 50_000] {
        let got = ctx.query("capped query", &EventQuery { limit, newest_first: true, ..q.clone() }).await;
        ctx.eq(&format!("limit {limit} returns MAX_LIMIT rows"), got.len(), MAX_LIMIT);
        ctx.eq(&format!("limit {limit}: newest row first"), got.first().and_then(|e| e.flow_id), Some(BULK as u64 - 1));
    }
    let q1 = EventQuery { flow_id: Some(12_345), ..q };
    ctx.same_as_oracle("large batch: point lookup by flow_id", &q1, &bulk).await;
    eprintln!("[{}] conformance: {BULK} events inserted in one call in {took:.2?}", ctx.name);
    bulk
}

async fn retention(ctx: &Ctx<'_>, small: &[Event], bulk: &[Event]) {
    let all: Vec<Event> = small.iter().chain(bulk).cloned().collect();
    let day_count = |d: i64| all.iter().filter(|e| e.timestamp.unix_day() == d).count() as u64;
    let total = all.len() as u64;

    // Nothing before the first day.
    let r = ctx.ok("retention before the data", ctx.store.drop_days_before(BASE_DAY).await);
    ctx.eq("retention before the data drops nothing", (r.days_dropped, r.rows_dropped), (vec![], 0));

    // Drop the first day only.
    let r = ctx.ok("retention of day 1", ctx.store.drop_days_before(BASE_DAY + 1).await);
    let first = day_count(BASE_DAY);
    ctx.eq("retention of day 1: days", r.days_dropped, vec![BASE_DAY]);
    ctx.eq("retention of day 1: rows", r.rows_dropped, first);
    ctx.eq("retention of day 1: total left", ctx.count("count", &EventQuery::default()).await, total - first);
    let day1 =
        EventQuery { since: Some(micros(BASE_DAY, 0)), until: Some(micros(BASE_DAY + 1, 0)), ..Default::default() };
    ctx.eq("retention of day 1: the day is empty", ctx.count("count", &day1).await, 0);
    let rest: Vec<Event> = all.iter().filter(|e| e.timestamp.unix_day() > BASE_DAY).cloned().collect();
    let q = EventQuery {
        since: Some(micros(BASE_DAY + 1, 0)),
        until: Some(micros(BASE_DAY + 3, 0)),
        limit: MAX_LIMIT,
        ..Default::default()
    };
    ctx.same_as_oracle("retention of day 1: later days untouched", &q, &rest).await;

    // Again: idempotent.
    let r = ctx.ok("retention repeated", ctx.store.drop_days_before(BASE_DAY + 1).await);
    ctx.eq("retention repeated drops nothing", (r.days_dropped, r.rows_dropped), (vec![], 0));

    // Everything.
    let r = ctx.ok("retention of everything", ctx.store.drop_days_before(BULK_DAY + 1).await);
    ctx.eq("retention of everything: days", r.days_dropped, vec![BASE_DAY + 1, BASE_DAY + 2, BULK_DAY]);
    ctx.eq("retention of everything: rows", r.rows_dropped, total - first);
    ctx.eq("retention of everything: store empty", ctx.count("count", &EventQuery::default()).await, 0);

    // The store still works after retention.
    ctx.ok("insert after retention", ctx.store.insert_events(&small[..3]).await);
    ctx.eq("count after retention and insert", ctx.count("count", &EventQuery::default()).await, 3);
}

fn incident(tag: &str, n: u32, version: u64, severity: Level, status: IncidentStatus, segs: &[&str]) -> Incident {
    Incident {
        incident_id: format!("{tag}-inc-{n}"),
        version,
        title: format!("incident {n} v{version}"),
        severity,
        status,
        entities: vec![format!("ip:10.0.0.{n}"), format!("host:h{n}")],
        segments: segs.iter().map(|s| s.to_string()).collect(),
        alert_count: version,
        first_seen: Some(micros(20_000, i64::from(n) * 1_000_000)),
        last_seen: Some(micros(20_000, i64::from(n) * 1_000_000 + 500)),
        updated: Some(micros(20_000, i64::from(n) * 1_000_000 + i64::try_from(version).unwrap_or(0))),
        ..Incident::default()
    }
}

/// Incidents: the highest version wins whatever the write order; filters and paging.
async fn incidents(ctx: &Ctx<'_>, tag: &str) {
    let s = ctx.store;
    let v1 = incident(tag, 1, 1, Level::Medium, IncidentStatus::New, &["ministry"]);
    let v2 = incident(tag, 1, 2, Level::High, IncidentStatus::Acknowledged, &["ministry", "cpnet"]);
    ctx.ok("upsert v1", s.upsert_incidents(std::slice::from_ref(&v1)).await);
    ctx.ok("upsert v2", s.upsert_incidents(std::slice::from_ref(&v2)).await);
    // A late, older version changes nothing.
    ctx.ok("upsert stale v1", s.upsert_incidents(std::slice::from_ref(&v1)).await);
    let got = ctx.ok("get incident", s.get_incident(&v2.incident_id).await);
    ctx.eq("latest version wins", got, Some(v2.clone()));
    ctx.eq("unknown incident", ctx.ok("get unknown", s.get_incident(&format!("{tag}-nope")).await), None);
    let others = vec![
        incident(tag, 2, 1, Level::Low, IncidentStatus::New, &["cpnet"]),
        incident(tag, 3, 1, Level::Critical, IncidentStatus::Resolved, &["ministry"]),
        incident(tag, 4, 1, Level::Informational, IncidentStatus::New, &[]),
    ];
    ctx.ok("upsert batch", s.upsert_incidents(&others).await);
    let ids = |v: Vec<Incident>| v.into_iter().map(|i| i.incident_id).collect::<Vec<_>>();
    let id = |n: u32| format!("{tag}-inc-{n}");
    let mine = |mut q: IncidentQuery| {
        q.since = Some(micros(20_000, 0));
        q.until = Some(micros(20_001, 0));
        q
    };
    let all = ctx.ok("all incidents", s.query_incidents(&mine(IncidentQuery::default())).await);
    ctx.eq("newest last_seen first", ids(all), vec![id(4), id(3), id(2), id(1)]);
    ctx.eq("count incidents", ctx.ok("count", s.count_incidents(&mine(IncidentQuery::default())).await), 4);
    let q = mine(IncidentQuery { segments: Some(vec!["cpnet".into()]), ..Default::default() });
    ctx.eq("segment scope", ids(ctx.ok("by segment", s.query_incidents(&q).await)), vec![id(2), id(1)]);
    let q = mine(IncidentQuery { segments: Some(vec![]), ..Default::default() });
    ctx.eq("empty scope sees nothing", ctx.ok("empty scope", s.count_incidents(&q).await), 0);
    let q = mine(IncidentQuery { min_severity: Some(Level::High), ..Default::default() });
    ctx.eq("min severity", ids(ctx.ok("by severity", s.query_incidents(&q).await)), vec![id(3), id(1)]);
    let q = mine(IncidentQuery { status: Some(vec![IncidentStatus::New]), ..Default::default() });
    ctx.eq("status", ids(ctx.ok("by status", s.query_incidents(&q).await)), vec![id(4), id(2)]);
    let q = mine(IncidentQuery { entity: Some("host:h3".into()), ..Default::default() });
    ctx.eq("entity", ids(ctx.ok("by entity", s.query_incidents(&q).await)), vec![id(3)]);
    let q = mine(IncidentQuery { limit: 2, offset: 1, ..Default::default() });
    ctx.eq("paging", ids(ctx.ok("page", s.query_incidents(&q).await)), vec![id(3), id(2)]);
    ctx.eq("count ignores paging", ctx.ok("count page", s.count_incidents(&q).await), 4);
    let bad = Incident::default();
    let err = s.upsert_incidents(&[bad]).await;
    ctx.check(matches!(err, Err(StoreError::Invalid(_))), "incident without id", format!("{err:?}"));
}

/// Batch reads of incidents: the latest version of each id asked for, unknown ids absent,
/// duplicates read once, over more ids than one query takes ([`crate::INCIDENT_CHUNK`]).
/// Written on a day of their own, outside the range the other incident checks query.
async fn incident_batches(ctx: &Ctx<'_>, tag: &str) {
    let s = ctx.store;
    let n = u32::try_from(crate::INCIDENT_CHUNK).unwrap_or(u32::MAX).saturating_add(5);
    let day = |mut i: Incident| {
        i.first_seen = Some(micros(20_010, 0));
        i.last_seen = Some(micros(20_010, 1));
        i
    };
    let first: Vec<Incident> =
        (1..=n).map(|k| day(incident(tag, 1_000 + k, 1, Level::Low, IncidentStatus::New, &["cpnet"]))).collect();
    ctx.ok("upsert many incidents", s.upsert_incidents(&first).await);
    // Every third one gets a second version, one of them twice in the same batch (the
    // higher wins), and a stale first version comes again.
    let mut later: Vec<Incident> = (1..=n)
        .filter(|k| k % 3 == 0)
        .map(|k| day(incident(tag, 1_000 + k, 2, Level::High, IncidentStatus::Acknowledged, &["cpnet"])))
        .collect();
    later.push(day(incident(tag, 1_003, 3, Level::Critical, IncidentStatus::Investigating, &["cpnet"])));
    later.push(first[0].clone());
    ctx.ok("upsert later versions", s.upsert_incidents(&later).await);
    let mut want: BTreeMap<String, Incident> = first.iter().map(|i| (i.incident_id.clone(), i.clone())).collect();
    for i in &later {
        if want.get(&i.incident_id).is_none_or(|w| w.version < i.version) {
            want.insert(i.incident_id.clone(), i.clone());
        }
    }
    let mut ask: Vec<String> = want.keys().cloned().collect();
    ask.push(format!("{tag}-inc-missing"));
    ask.push(first[1].incident_id.clone());
    let got = ctx.ok("get incidents", s.get_incidents(&ask).await);
    let got: BTreeMap<String, Incident> = got.into_iter().collect();
    ctx.eq("batch read: ids", got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (id, w) in &want {
        ctx.eq(&format!("batch read: latest version of {id}"), got.get(id), Some(w));
    }
    let three = format!("{tag}-inc-1003");
    ctx.eq("batch read: highest of one batch", got.get(&three).map(|i| i.version), Some(3));
    // The same as one-by-one reads.
    for id in [&three, &first[0].incident_id, &format!("{tag}-inc-missing")] {
        let one = ctx.ok("get incident", s.get_incident(id).await);
        ctx.eq(&format!("batch read equals get_incident for {id}"), got.get(id.as_str()).cloned(), one);
    }
    let none = ctx.ok("get no incidents", s.get_incidents(&[]).await);
    ctx.check(none.is_empty(), "batch read of nothing", format!("{} incidents", none.len()));
}

/// Forwarding records: append-only, idempotent by id, newest first, per incident.
async fn forwarding(ctx: &Ctx<'_>, tag: &str) {
    let s = ctx.store;
    let rec = |inc: &str, at: i64, state: ForwardState, attempt: u32| {
        let mut e = Event::new(EventType::Forwarding, micros(20_000, at));
        e.forwarding = Some(Forwarding {
            incident_id: inc.to_string(),
            incident_version: 1,
            state,
            destination: "https://ncsc.example/taxii2/api/collections/x/objects/".into(),
            attempt,
            ..Forwarding::default()
        });
        e.ensure_id();
        e
    };
    let a = format!("{tag}-fwd-a");
    let b = format!("{tag}-fwd-b");
    let recs = vec![
        rec(&a, 1, ForwardState::Queued, 0),
        rec(&a, 2, ForwardState::Failed, 1),
        rec(&a, 3, ForwardState::Confirmed, 2),
        rec(&b, 4, ForwardState::Queued, 0),
    ];
    ctx.ok("insert forwarding", s.insert_forwarding(&recs).await);
    ctx.ok("insert forwarding again", s.insert_forwarding(&recs).await);
    let got = ctx.ok("forwarding of a", s.query_forwarding(Some(&a), 0).await);
    let states: Vec<ForwardState> = got.iter().filter_map(|e| e.forwarding.as_ref().map(|f| f.state)).collect();
    ctx.eq(
        "newest first, once each",
        states,
        vec![ForwardState::Confirmed, ForwardState::Failed, ForwardState::Queued],
    );
    ctx.eq("round trip", got.last().cloned(), Some(recs[0].clone()));
    let latest = ctx.ok("all forwarding", s.query_forwarding(None, 1).await);
    ctx.check(latest.len() == 1, "limit", format!("{} records", latest.len()));
    let mut no_payload = Event::new(EventType::Forwarding, micros(20_000, 9));
    no_payload.ensure_id();
    let err = s.insert_forwarding(&[no_payload]).await;
    ctx.check(matches!(err, Err(StoreError::Invalid(_))), "record without payload", format!("{err:?}"));
}

/// The day of the alert checks (no other check writes there).
const ALERT_DAY: i64 = BASE_DAY + 20;
/// The day of the statistics checks.
const SUMMARY_DAY: i64 = BASE_DAY + 21;

fn alert_ids(v: &[AlertRecord]) -> Vec<&str> {
    v.iter().map(|a| a.id.as_str()).collect()
}

/// Alerts as rows: projection of alert and detection records in insert_events, filters,
/// order, paging with totals, triage versions, re-emitted alerts, suppressions.
async fn alerts(ctx: &Ctx<'_>, tag: &str) {
    let sensor = format!("{tag}-alerts");
    let at = |m: i64| micros(ALERT_DAY, m * 60_000_000).to_string();
    let suricata = |m: i64, sid: u64, sev: u8, seg: &str, src: &str| {
        event(json!({
            "timestamp": at(m), "event_type": "alert", "sensor": sensor, "segment": seg,
            "src_ip": src, "dest_ip": "198.51.100.7", "host": "gw1",
            "alert": {"signature_id": sid, "signature": format!("ET TEST Rule {sid}"), "severity": sev,
                      "category": "Misc", "metadata": {"mitre_technique_id": ["T1071"]}}
        }))
    };
    let sigma = |m: i64, rule: &str, level: &str, seg: &str| {
        event(json!({
            "timestamp": at(m), "event_type": "detection", "sensor": sensor, "segment": seg,
            "host": "dc01", "user": "Alice",
            "detection": {"engine": "sigma", "rule_id": rule, "rule_title": format!("Suspicious {rule}"),
                          "level": level, "tags": ["attack.t1003"]}
        }))
    };
    let a1 = suricata(1, 2_000_001, 1, "cpnet", "10.5.0.1");
    let a2 = suricata(2, 2_000_002, 3, "cpnet", "10.5.0.2");
    let d1 = sigma(3, "r-one", "critical", "ministry");
    let d2 = sigma(4, "r-two", "medium", "ministry");
    let flow = event(json!({"timestamp": at(5), "event_type": "flow", "sensor": sensor, "segment": "cpnet"}));
    let batch = vec![a1.clone(), a2.clone(), d1.clone(), d2.clone(), flow];
    ctx.ok("alerts: insert", ctx.store.insert_events(&batch).await);
    ctx.ok("alerts: insert again (redelivered)", ctx.store.insert_events(&batch).await);
    // An IOC hit delivered once (its row stays at version 1).
    let i1 = event(json!({
        "timestamp": at(6), "event_type": "detection", "sensor": sensor, "segment": "cpnet",
        "detection": {"engine": "ioc", "rule_id": "ioc-domain", "rule_title": "IOC domain", "level": "low"}
    }));
    ctx.ok("alerts: insert once", ctx.store.insert_events(std::slice::from_ref(&i1)).await);
    let base = AlertQuery {
        since: Some(micros(ALERT_DAY, 0)),
        until: Some(micros(ALERT_DAY + 1, 0)),
        sensor: Some(sensor.clone()),
        descending: true,
        ..Default::default()
    };
    let page = |q: AlertQuery| async move { ctx.ok("alerts: query", ctx.store.query_alerts(&q).await) };
    let all = page(base.clone()).await;
    let id = |e: &Event| e.id.clone().unwrap_or_default();
    ctx.eq("alerts: total (flow not an alert, redelivery once)", all.total, 5);
    ctx.eq("alerts: newest first", alert_ids(&all.items), vec![&id(&i1)[..], &id(&d2), &id(&d1), &id(&a2), &id(&a1)]);
    let r = &all.items[4];
    ctx.eq(
        "alerts: suricata row",
        (r.kind.as_str(), r.rule_id.as_str(), r.severity),
        ("suricata", "2000001", Level::High),
    );
    ctx.eq(
        "alerts: entities",
        r.entities.clone(),
        vec!["ip:10.5.0.1".to_string(), "ip:198.51.100.7".into(), "host:gw1".into()],
    );
    ctx.eq("alerts: tags", r.tags.clone(), vec!["attack.t1071".to_string()]);
    ctx.eq("alerts: state", (r.state.status.as_str(), r.count), ("new", 1));
    ctx.eq("alerts: event round trip", &r.event, &a1);
    let r = &all.items[2];
    ctx.eq(
        "alerts: detection row",
        (r.kind.as_str(), r.severity, r.user.as_deref()),
        ("sigma", Level::Critical, Some("Alice")),
    );
    // Filters.
    let q = AlertQuery { severities: Some(vec![Level::High, Level::Critical]), ..base.clone() };
    ctx.eq("alerts: severity filter", alert_ids(&page(q).await.items), vec![&id(&d1)[..], &id(&a1)]);
    let q = AlertQuery { rule: Some("2000002".into()), ..base.clone() };
    ctx.eq("alerts: rule id", alert_ids(&page(q).await.items), vec![&id(&a2)[..]]);
    let q = AlertQuery { rule: Some("suspicious R-TWO".into()), ..base.clone() };
    ctx.eq("alerts: rule title, any case", alert_ids(&page(q).await.items), vec![&id(&d2)[..]]);
    let q = AlertQuery { segments: Some(vec!["cpnet".into()]), ..base.clone() };
    ctx.eq("alerts: scope", page(q).await.total, 3);
    let q = AlertQuery { segments: Some(vec![]), ..base.clone() };
    ctx.eq("alerts: empty scope", page(q).await.total, 0);
    let q = AlertQuery { ip: Some("198.51.100.7".into()), ..base.clone() };
    ctx.eq("alerts: ip", page(q).await.total, 2);
    let q = AlertQuery { id: Some(id(&d1)), ..base.clone() };
    ctx.eq("alerts: by id", alert_ids(&page(q).await.items), vec![&id(&d1)[..]]);
    // Order and paging.
    let q = AlertQuery { sort: AlertSort::Severity, ..base.clone() };
    ctx.eq(
        "alerts: by severity",
        alert_ids(&page(q).await.items),
        vec![&id(&d1)[..], &id(&a1), &id(&d2), &id(&i1), &id(&a2)],
    );
    let q = AlertQuery { descending: false, offset: 1, limit: 2, ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: page 2 oldest first", (p.total, alert_ids(&p.items)), (5, vec![&id(&a2)[..], &id(&d1)]));
    // Triage: a new version with the state; status filters see the latest one.
    let st = AlertState { status: "acknowledged".into(), owner: Some("bob".into()), ..Default::default() };
    let up = ctx.ok("alerts: update", ctx.store.update_alert(&id(&d1), &st).await);
    let up = up.unwrap_or_else(|| panic!("[{}] alerts: update found no alert", ctx.name));
    ctx.check(up.version >= 2, "alerts: update makes a version", format!("version {}", up.version));
    ctx.eq("alerts: updated state", &up.state, &st);
    let q = AlertQuery { statuses: Some(vec!["acknowledged".into()]), ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: acknowledged", (p.total, alert_ids(&p.items)), (1, vec![&id(&d1)[..]]));
    ctx.eq("alerts: owner", p.items[0].state.owner.as_deref(), Some("bob"));
    let q = AlertQuery { statuses: Some(vec!["new".into()]), ..base.clone() };
    ctx.eq("alerts: still new", page(q).await.total, 4);
    ctx.eq("alerts: total unchanged by versions", page(base.clone()).await.total, 5);
    let none = ctx.ok("alerts: update unknown", ctx.store.update_alert("no-such-alert", &st).await);
    ctx.check(none.is_none(), "alerts: update unknown", "an unknown id must give None");
    let bad = AlertState { status: "bogus".into(), ..Default::default() };
    ctx.check(
        matches!(ctx.store.update_alert(&id(&d2), &bad).await, Err(StoreError::Invalid(_))),
        "alerts: bad status",
        "an unknown status must be refused as invalid",
    );
    // The correlator re-emits a deduplicated alert with the same id and a higher count:
    // the row follows (state kept); a lower count afterwards changes nothing.
    let mut again = d1.clone();
    if let Some(d) = again.detection.as_mut() {
        d.extra.insert("count".into(), json!(5));
    }
    ctx.ok("alerts: re-emitted", ctx.store.insert_events(std::slice::from_ref(&again)).await);
    let mut lower = d1.clone();
    if let Some(d) = lower.detection.as_mut() {
        d.extra.insert("count".into(), json!(2));
    }
    ctx.ok("alerts: stale re-emission", ctx.store.insert_events(std::slice::from_ref(&lower)).await);
    let q = AlertQuery { id: Some(id(&d1)), ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: re-emitted total", p.total, 1);
    ctx.eq(
        "alerts: re-emitted count and state",
        (p.items[0].count, p.items[0].state.status.as_str()),
        (5, "acknowledged"),
    );
    ctx.eq("alerts: re-emitted record", &p.items[0].event, &again);
    // Suppressions turn matching new alerts into suppressed ones, later alerts included.
    let sup = vec![Suppression { kind: "suricata".into(), rule_id: "2000002".into(), segment: "cpnet".into() }];
    let q = AlertQuery { statuses: Some(vec!["suppressed".into()]), suppressions: sup.clone(), ..base.clone() };
    ctx.eq("alerts: suppressed", alert_ids(&page(q).await.items), vec![&id(&a2)[..]]);
    let q = AlertQuery { statuses: Some(vec!["new".into()]), suppressions: sup.clone(), ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: new minus suppressed", (p.total, alert_ids(&p.items)), (3, vec![&id(&i1)[..], &id(&d2), &id(&a1)]));
    let q = AlertQuery { id: Some(id(&a2)), suppressions: sup, ..base.clone() };
    ctx.eq("alerts: effective status", page(q).await.items[0].state.status.as_str(), "suppressed");
    // Triage of an alert written once.
    let closed = AlertState { status: "closed".into(), verdict: Some("benign".into()), ..Default::default() };
    ctx.ok("alerts: close", ctx.store.update_alert(&id(&i1), &closed).await);
    let q = AlertQuery { statuses: Some(vec!["closed".into()]), ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: closed", (p.total, alert_ids(&p.items)), (1, vec![&id(&i1)[..]]));
    ctx.eq("alerts: verdict", p.items[0].state.verdict.as_deref(), Some("benign"));
    let q = AlertQuery { statuses: Some(vec!["new".into()]), ..base.clone() };
    ctx.eq("alerts: new after close", alert_ids(&page(q).await.items), vec![&id(&d2)[..], &id(&a2), &id(&a1)]);
    ctx.eq("alerts: total after close", page(base.clone()).await.total, 5);
    // Several statuses at once: triaged and untriaged alerts in one list.
    let q = AlertQuery { statuses: Some(vec!["new".into(), "closed".into()]), ..base.clone() };
    let p = page(q).await;
    ctx.eq(
        "alerts: new or closed",
        (p.total, alert_ids(&p.items)),
        (4, vec![&id(&i1)[..], &id(&d2), &id(&a2), &id(&a1)]),
    );
    // Closed, then the correlator re-emits it with a higher count: still closed, one alert.
    let mut later = i1.clone();
    if let Some(d) = later.detection.as_mut() {
        d.extra.insert("count".into(), json!(3));
    }
    ctx.ok("alerts: closed alert re-emitted", ctx.store.insert_events(std::slice::from_ref(&later)).await);
    let q = AlertQuery { statuses: Some(vec!["closed".into()]), ..base.clone() };
    let p = page(q).await;
    ctx.eq(
        "alerts: re-emission keeps the close",
        (p.total, p.items.first().map(|r| (r.count, r.state.verdict.clone()))),
        (1, Some((3, Some("benign".to_string())))),
    );
    let q = AlertQuery { statuses: Some(vec!["new".into()]), ..base.clone() };
    ctx.eq("alerts: re-emission is not new again", page(q).await.total, 3);
    // Reopened: back to `new` (a state that is the default again).
    ctx.ok("alerts: reopen", ctx.store.update_alert(&id(&a2), &AlertState::default()).await);
    let q = AlertQuery { statuses: Some(vec!["new".into()]), ..base.clone() };
    ctx.eq("alerts: reopened is new", page(q).await.total, 3);
    let q = AlertQuery { statuses: Some(vec!["acknowledged".into()]), ..base.clone() };
    ctx.eq("alerts: acknowledged after reopen", alert_ids(&page(q).await.items), vec![&id(&d1)[..]]);
    // The first page of an open-ended range (newest first): the newest alerts, whatever
    // the store reads first; the total is that of the whole range.
    let q = AlertQuery { since: None, until: Some(micros(ALERT_DAY, 7 * 60_000_000)), limit: 2, ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: open range first page", (p.total, alert_ids(&p.items)), (5, vec![&id(&i1)[..], &id(&d2)]));
    let q = AlertQuery { since: Some(micros(ALERT_DAY, 0)), until: None, descending: false, limit: 2, ..base.clone() };
    let p = page(q).await;
    ctx.eq("alerts: oldest first page", (p.total, alert_ids(&p.items)), (5, vec![&id(&a1)[..], &id(&a2)]));
    // Only a time range and a scope (the queue's default view): totals of whole hours and
    // of partial ones, every alert once although some were re-emitted or delivered twice.
    let day = AlertQuery {
        since: Some(micros(ALERT_DAY, 0)),
        until: Some(micros(ALERT_DAY + 1, 0)),
        descending: true,
        limit: 3,
        ..Default::default()
    };
    let p = page(day.clone()).await;
    ctx.eq("alerts: day total", (p.total, alert_ids(&p.items)), (5, vec![&id(&i1)[..], &id(&d2), &id(&d1)]));
    let q = AlertQuery { segments: Some(vec!["cpnet".into()]), ..day.clone() };
    ctx.eq("alerts: day total in a scope", page(q).await.total, 3);
    let q = AlertQuery { since: Some(micros(ALERT_DAY, 2 * 60_000_000)), ..day.clone() };
    ctx.eq("alerts: total from a partial hour", page(q).await.total, 4);
    let q = AlertQuery { until: Some(micros(ALERT_DAY, 4 * 60_000_000)), ..day.clone() };
    ctx.eq("alerts: total until a partial hour", page(q).await.total, 3);
    let q = AlertQuery { statuses: Some(vec!["new".into()]), ..day };
    ctx.eq("alerts: day total of new ones", page(q).await.total, 3);
}

/// Statistics: one data set inserted once on its own day.
async fn summary(ctx: &Ctx<'_>, tag: &str) {
    let sensor = format!("{tag}-stats");
    let at = |m: i64| micros(SUMMARY_DAY, m * 60_000_000).to_string();
    let mut evs = Vec::new();
    for (i, (ty, seg, src)) in [
        ("flow", "cpnet", "10.7.0.1"),
        ("flow", "cpnet", "10.7.0.1"),
        ("dns", "ministry", "10.7.0.2"),
        ("alert", "cpnet", "10.7.0.1"),
        ("alert", "ministry", "10.7.0.3"),
        ("detection", "ministry", "10.7.0.3"),
    ]
    .iter()
    .enumerate()
    {
        let mut v = json!({"timestamp": at(i as i64 * 70), "event_type": ty, "sensor": sensor, "segment": seg,
                           "src_ip": src, "dest_ip": "203.0.113.9",
                           "geoip": {"dest_ip": {"country_iso": "VN", "asn": 45899}}});
        if *ty == "alert" {
            v["alert"] = json!({"signature_id": 1, "signature": "ET STATS", "severity": 2});
        }
        if *ty == "detection" {
            v["detection"] = json!({"engine": "sigma", "rule_id": "s", "rule_title": "Stats rule"});
        }
        evs.push(event(v));
    }
    ctx.ok("summary: insert", ctx.store.insert_events(&evs).await);
    let hour = 3_600_000_000;
    let q = SummaryQuery {
        base: EventQuery {
            since: Some(micros(SUMMARY_DAY, 0)),
            until: Some(micros(SUMMARY_DAY + 1, 0)),
            ..Default::default()
        },
        bucket_micros: hour,
        top: 10,
    };
    let s = ctx.ok("summary", ctx.store.summary(&q).await);
    ctx.eq("summary: total", s.total(), 6);
    ctx.eq(
        "summary: by type",
        s.by_type(),
        vec![("alert".to_string(), 2), ("flow".into(), 2), ("detection".into(), 1), ("dns".into(), 1)],
    );
    ctx.eq("summary: by segment", s.by_segment(), vec![("cpnet".to_string(), 3), ("ministry".into(), 3)]);
    // Alerts at minutes 210, 280 and 350: hours 3, 4 and 5.
    let day0 = SUMMARY_DAY * DAY_US;
    ctx.eq(
        "summary: alerts over time",
        s.alerts_over_time.clone(),
        vec![(day0 + 3 * hour, 1), (day0 + 4 * hour, 1), (day0 + 5 * hour, 1)],
    );
    ctx.eq("summary: top rules", s.top_rules.clone(), vec![("ET STATS".to_string(), 2), ("Stats rule".into(), 1)]);
    ctx.eq(
        "summary: top talkers",
        s.top_talkers.clone(),
        vec![("10.7.0.1".to_string(), 3), ("10.7.0.3".into(), 2), ("10.7.0.2".into(), 1)],
    );
    ctx.eq("summary: countries", s.countries.clone(), vec![("VN".to_string(), 6)]);
    ctx.eq("summary: asns", s.asns.clone(), vec![("45899".to_string(), 6)]);
    let scoped =
        SummaryQuery { base: EventQuery { segments: Some(vec!["cpnet".into()]), ..q.base.clone() }, ..q.clone() };
    let s = ctx.ok("summary: scoped", ctx.store.summary(&scoped).await);
    ctx.eq("summary: scoped total", s.total(), 3);
    ctx.eq("summary: scoped rules", s.top_rules.clone(), vec![("ET STATS".to_string(), 1)]);
    ctx.eq("summary: scoped talkers", s.top_talkers.clone(), vec![("10.7.0.1".to_string(), 3)]);
    // A range of whole hours plus a partial one (3:00 to 5:55): the 5:50 detection is in the
    // partial hour, the records before 3:00 are out.
    let part = SummaryQuery {
        base: EventQuery {
            since: Some(micros(SUMMARY_DAY, 3 * hour)),
            until: Some(micros(SUMMARY_DAY, 5 * hour + 55 * 60_000_000)),
            ..Default::default()
        },
        ..q.clone()
    };
    let s = ctx.ok("summary: partial hours", ctx.store.summary(&part).await);
    ctx.eq("summary: partial total", s.by_type(), vec![("alert".to_string(), 2), ("detection".into(), 1)]);
    ctx.eq(
        "summary: partial alerts over time",
        s.alerts_over_time.clone(),
        vec![(day0 + 3 * hour, 1), (day0 + 4 * hour, 1), (day0 + 5 * hour, 1)],
    );
    ctx.eq("summary: partial rules", s.top_rules.clone(), vec![("ET STATS".to_string(), 2), ("Stats rule".into(), 1)]);
    ctx.eq(
        "summary: partial talkers",
        s.top_talkers.clone(),
        vec![("10.7.0.3".to_string(), 2), ("10.7.0.1".into(), 1)],
    );
    ctx.eq("summary: partial countries", s.countries.clone(), vec![("VN".to_string(), 3)]);
    // Dedup re-emits the detection with a growing count under the same id: still one
    // detection, one talker row and one GeoIP count.
    let mut again = evs[5].clone();
    if let Some(d) = again.detection.as_mut() {
        d.extra.insert("count".into(), json!(3));
    }
    ctx.ok("summary: re-emitted insert", ctx.store.insert_events(&[again]).await);
    let s = ctx.ok("summary: re-emitted", ctx.store.summary(&q).await);
    ctx.eq("summary: re-emitted total", s.total(), 6);
    ctx.eq(
        "summary: re-emitted rules",
        s.top_rules.clone(),
        vec![("ET STATS".to_string(), 2), ("Stats rule".into(), 1)],
    );
    ctx.eq(
        "summary: re-emitted talkers",
        s.top_talkers.clone(),
        vec![("10.7.0.1".to_string(), 3), ("10.7.0.3".into(), 2), ("10.7.0.2".into(), 1)],
    );
    ctx.eq("summary: re-emitted countries", s.countries.clone(), vec![("VN".to_string(), 6)]);
    let bad = SummaryQuery { bucket_micros: 0, ..q };
    ctx.check(
        matches!(ctx.store.summary(&bad).await, Err(StoreError::Invalid(_))),
        "summary: bucket",
        "0 must be invalid",
    );
}

/// Pages in time order over records spread around now (30 min, 3 h, 20 h and 3 days ago):
/// however a store narrows the time range it reads first, the page is the same, whether it
/// fills inside the newest (or oldest) hours or needs the whole range; with and without
/// per-row filters (address, search expression).
async fn recent_pages(ctx: &Ctx<'_>, tag: &str) {
    use crate::search::{Column, Expr, Field, Op, SearchQuery, SearchResult};
    let sensor = format!("{tag}-recent");
    let now = Timestamp::now().unix_micros();
    let mut evs = Vec::new();
    for (i, ago_min) in [30i64, 180, 1_200, 4_320].iter().enumerate() {
        let mut e = Event::new(EventType::Flow, Timestamp::from_unix_micros(now - ago_min * 60_000_000));
        e.sensor = Some(sensor.clone());
        e.src_ip = Some("10.77.0.1".into());
        e.dest_ip = Some("203.0.113.77".into());
        e.dest_port = Some(if i % 2 == 0 { 443 } else { 80 });
        e.ensure_id();
        evs.push(e);
    }
    ctx.ok("recent pages: insert", ctx.store.insert_events(&evs).await);
    let newest: Vec<&str> = ids(&evs);
    let oldest: Vec<&str> = newest.iter().rev().copied().collect();
    let base = EventQuery { sensor: Some(sensor.clone()), newest_first: true, ..Default::default() };
    for limit in 1..=5usize {
        let n = limit.min(evs.len());
        let got = ctx.query("recent pages", &EventQuery { limit, ..base.clone() }).await;
        ctx.same_list(&format!("recent pages: newest {limit}"), &ids(&got), &newest[..n]);
        let q = EventQuery { limit, ip: Some("10.77.0.1".into()), ..base.clone() };
        let got = ctx.query("recent pages", &q).await;
        ctx.same_list(&format!("recent pages: newest {limit} of an address"), &ids(&got), &newest[..n]);
        let q = EventQuery {
            limit,
            newest_first: false,
            since: Some(Timestamp::from_unix_micros(now - 5 * 86_400_000_000)),
            ..base.clone()
        };
        let got = ctx.query("recent pages", &q).await;
        ctx.same_list(&format!("recent pages: oldest {limit} since 5 days"), &ids(&got), &oldest[..n]);
    }
    // A search whose matches (port 443: 30 min and 20 h ago) are not all in the newest hours.
    let q = SearchQuery {
        base: EventQuery { limit: 2, ..base.clone() },
        filter: Some(Expr::Cmp { field: Field::AnyIp, op: Op::Eq, value: "203.0.113.77".into() }),
        count_by: None,
    };
    let filter = Expr::And(vec![
        Expr::Cmp { field: Field::AnyIp, op: Op::Eq, value: "203.0.113.77".into() },
        Expr::Cmp { field: Field::Column(Column::DestPort), op: Op::Eq, value: "443".into() },
    ]);
    match ctx.ok("recent pages: search", ctx.store.search(&SearchQuery { filter: Some(filter), ..q.clone() }).await) {
        SearchResult::Events(v) => {
            ctx.same_list("recent pages: search newest 2", &ids(&v), &[newest[0], newest[2]]);
        }
        other => ctx.check(false, "recent pages: search", format!("want events, got {other:?}")),
    }
    match ctx.ok("recent pages: search", ctx.store.search(&q).await) {
        SearchResult::Events(v) => ctx.same_list("recent pages: search any ip", &ids(&v), &newest[..2]),
        other => ctx.check(false, "recent pages: search", format!("want events, got {other:?}")),
    }
}
