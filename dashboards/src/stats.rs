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
use soc_model::Timestamp;
use soc_store::search::{Column, Expr, Field, GroupBy, Op, SearchQuery, SearchResult};
use soc_store::{EventQuery, SummaryQuery};

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

/// `GET /api/stats?since&until&segment`: every chart from one [`soc_store::Store::summary`]
/// (a few grouped queries in the store, within the caller's scope).
pub async fn stats(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let now = Timestamp::now();
    let (since, until) = crate::time_range(p.since.as_deref(), p.until.as_deref(), now)?;
    let q = EventQuery { since, until, segments: who.scope(crate::list(p.segment.as_deref())), ..Default::default() };
    let bucket = bucket_micros(since, until.unwrap_or(now));
    let s = st.store.summary(&SummaryQuery { base: q, bucket_micros: bucket, top: TOP }).await?;
    let (by_type, by_segment) = (s.by_type(), s.by_segment());
    let over_time: Vec<Value> =
        s.alerts_over_time.iter().map(|(t, n)| json!({"t": Timestamp::from_unix_micros(*t), "count": n})).collect();
    Ok(Json(json!({
        "total": s.total(),
        "by_type": obj(&by_type),
        "by_segment": obj(&by_segment),
        "events_by_type": obj(&by_type),
        "events_by_segment": obj(&by_segment),
        "alerts_over_time": over_time,
        "bucket_seconds": bucket / 1_000_000,
        "top_rules": obj(&s.top_rules),
        "top_talkers": obj(&s.top_talkers),
        "countries": obj(&s.countries),
        "asns": obj(&s.asns),
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
