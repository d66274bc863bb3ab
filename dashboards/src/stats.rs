//! `GET /api/stats` (counts for the overview) and `GET /api/sensors` (health per sensor and
//! collector), both within the caller's data scope.
//!
//! Countries and ASNs come from the correlator's GeoIP enrichment of the records when present
//! (`geoip.src_ip.country_iso`, `geoip.dest_ip.asn`, ...: both directions counted); empty
//! lists otherwise.

use crate::auth::Principal;
use crate::{ApiError, ApiState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use soc_model::{EventType, Timestamp};
use soc_store::search::{Column, Expr, Field, GroupBy, Op, SearchQuery, SearchResult};
use soc_store::{CountBy, EventQuery};
use std::collections::HashMap;

/// Entries of each "top" list.
pub const TOP: usize = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    pub since: Option<String>,
    pub until: Option<String>,
    pub segment: Option<String>,
}

fn obj(v: &[(String, u64)]) -> Vec<Value> {
    v.iter().map(|(k, n)| json!({"key": k, "count": n})).collect()
}

async fn counts(
    st: &ApiState,
    base: &EventQuery,
    filter: Option<Expr>,
    by: GroupBy,
    limit: usize,
) -> Result<Vec<(String, u64)>, ApiError> {
    let q = SearchQuery { base: EventQuery { limit, ..base.clone() }, filter, count_by: Some(by) };
    match st.store.search(&q).await? {
        SearchResult::Counts(c) => Ok(c.into_iter().filter(|(k, _)| !k.is_empty()).collect()),
        SearchResult::Events(_) => Ok(Vec::new()),
    }
}

fn type_is(t: EventType) -> Expr {
    Expr::Cmp { field: Field::Column(Column::EventType), op: Op::Eq, value: t.as_str().into() }
}

fn field(name: &str) -> Result<Field, ApiError> {
    Field::parse(name).map_err(|e| ApiError { status: axum::http::StatusCode::INTERNAL_SERVER_ERROR, message: e })
}

/// The largest `TOP` entries, ties by key.
fn top(m: HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(TOP);
    v
}

/// Bucket width for `alerts_over_time`: about 24 to 120 buckets over the range.
fn bucket_micros(since: Option<Timestamp>, until: Timestamp) -> i64 {
    const MIN: i64 = 60_000_000;
    const HOUR: i64 = 60 * MIN;
    let span = since.map(|s| until.unix_micros() - s.unix_micros()).unwrap_or(i64::MAX);
    if span <= 2 * HOUR {
        MIN
    } else if span <= 2 * 24 * HOUR {
        HOUR
    } else {
        24 * HOUR
    }
}

/// `GET /api/stats?since&until&segment`.
pub async fn stats(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let now = Timestamp::now();
    let (since, until) = crate::time_range(p.since.as_deref(), p.until.as_deref(), now)?;
    let q = EventQuery { since, until, segments: who.scope(crate::list(p.segment.as_deref())), ..Default::default() };
    let total = st.store.count_events(&q).await?;
    let by_type = st.store.count_by(CountBy::EventType, &q).await?;
    let by_segment = st.store.count_by(CountBy::Segment, &q).await?;
    let alerts = Expr::Or(vec![type_is(EventType::Alert), type_is(EventType::Detection)]);
    let bucket = bucket_micros(since, until.unwrap_or(now));
    let mut over_time =
        counts(&st, &q, Some(alerts), GroupBy::TimeBucket { micros: bucket }, soc_store::MAX_LIMIT).await?;
    over_time.sort_by_key(|(k, _)| k.parse::<i64>().unwrap_or(0));
    let over_time: Vec<Value> = over_time
        .iter()
        .filter_map(|(k, n)| Some(json!({"t": Timestamp::from_unix_micros(k.parse().ok()?), "count": n})))
        .collect();
    let mut rules: HashMap<String, u64> = HashMap::new();
    for (t, f) in [(EventType::Alert, "alert.signature"), (EventType::Detection, "detection.rule_title")] {
        for (k, n) in counts(&st, &q, Some(type_is(t)), GroupBy::Field(field(f)?), TOP).await? {
            *rules.entry(k).or_default() += n;
        }
    }
    let top_rules = top(rules);
    let talkers = counts(&st, &q, None, GroupBy::Field(Field::Column(Column::SrcIp)), TOP).await?;
    let mut geo = Vec::new();
    for key in ["country_iso", "asn"] {
        let mut m: HashMap<String, u64> = HashMap::new();
        for dir in ["src_ip", "dest_ip"] {
            let f = field(&format!("geoip.{dir}.{key}"))?;
            for (k, n) in counts(&st, &q, None, GroupBy::Field(f), soc_store::MAX_LIMIT).await? {
                *m.entry(k).or_default() += n;
            }
        }
        geo.push(top(m));
    }
    let (countries, asns) = (&geo[0], &geo[1]);
    Ok(Json(json!({
        "total": total,
        "by_type": obj(&by_type),
        "by_segment": obj(&by_segment),
        "events_by_type": obj(&by_type),
        "events_by_segment": obj(&by_segment),
        "alerts_over_time": over_time,
        "bucket_seconds": bucket / 1_000_000,
        "top_rules": obj(&top_rules),
        "top_talkers": obj(&talkers),
        "countries": obj(countries),
        "asns": obj(asns),
    }))
    .into_response())
}

/// Metric samples of the Prometheus text that carry `sensor="name"`.
fn sensor_metrics(text: &str, name: &str) -> serde_json::Map<String, Value> {
    let label = format!("sensor=\"{name}\"");
    let mut out = serde_json::Map::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && l.contains(&label)) {
        if let Some((series, value)) = line.rsplit_once(' ')
            && let Ok(v) = value.parse::<f64>()
        {
            out.insert(series.to_string(), json!(v));
        }
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorParams {
    pub since: Option<String>,
}

/// `GET /api/sensors?since`: per sensor/collector name: records stored (in the range; the
/// last 24 hours by default), last record time, segments, and its metric samples.
pub async fn sensors(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<SensorParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let now = Timestamp::now();
    let since = match p.since.as_deref() {
        Some(s) => crate::parse_time("since", s, now)?,
        None => now.add_micros(-crate::search::DEFAULT_RANGE_MICROS),
    };
    let base = EventQuery { since: Some(since), segments: who.scope(None), ..Default::default() };
    let names = counts(&st, &base, None, GroupBy::Field(Field::Column(Column::Sensor)), 1000).await?;
    let metrics_text = (st.metrics)();
    let mut items = Vec::new();
    for (name, records) in names {
        let q = EventQuery { sensor: Some(name.clone()), limit: 1, newest_first: true, ..base.clone() };
        let last = st.store.query_events(&q).await?.into_iter().next();
        let segs = counts(
            &st,
            &base,
            Some(Expr::Cmp { field: Field::Column(Column::Sensor), op: Op::Eq, value: name.clone() }),
            GroupBy::Field(Field::Column(Column::Segment)),
            100,
        )
        .await?;
        let last_seen = last.as_ref().map(|e| e.timestamp);
        let age = last_seen.map(|t| (now.unix_micros() - t.unix_micros()) / 1_000_000);
        items.push(json!({
            "name": name,
            "records": records,
            "last_seen": last_seen,
            "seconds_since_last": age,
            "segments": segs.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            "metrics": sensor_metrics(&metrics_text, &name),
        }));
    }
    Ok(Json(json!({ "since": since, "items": items })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_range() {
        let now = Timestamp::from_unix_micros(100 * 86_400_000_000);
        assert_eq!(bucket_micros(Some(now.add_micros(-3_600_000_000)), now), 60_000_000);
        assert_eq!(bucket_micros(Some(now.add_micros(-86_400_000_000)), now), 3_600_000_000);
        assert_eq!(bucket_micros(None, now), 86_400_000_000);
    }

    #[test]
    fn sensor_metrics_are_picked_by_label() {
        let text = "# HELP x\nsoc_records_total{sensor=\"s1\"} 42\nsoc_records_total{sensor=\"s2\"} 7\n";
        let m = sensor_metrics(text, "s1");
        assert_eq!(m.len(), 1);
        assert_eq!(m.get("soc_records_total{sensor=\"s1\"}"), Some(&json!(42.0)));
    }
}
