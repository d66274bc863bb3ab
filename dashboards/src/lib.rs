//! The dashboard's HTTP API over the store.
//!
//! Routes (JSON):
//! - `GET /api/events?type=&since=&until=&segment=&sensor=&host=&ip=&flow_id=&community_id=&limit=&order=`
//!   stored records, newest first by default;
//! - `GET /api/stats?since=&until=`: counts per event type and per segment;
//! - `GET /healthz` (process alive), `GET /readyz` (store reachable), `GET /metrics`
//!   (Prometheus text, rendered by the closure the binary passes in).
//!
//! Bad requests get `400` with `{"error": "..."}` naming the parameter; store failures `503`.
#![forbid(unsafe_code)]

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use soc_model::Timestamp;
use soc_store::{CountBy, EventQuery, Store, StoreError};
use std::sync::Arc;

/// Renders the process's Prometheus metrics.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// Shared state of the API.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub metrics: MetricsRender,
}

/// An API error: status plus a message for the caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match e {
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            // A failing query is our bug, not an outage: the client should not just retry.
            StoreError::Query(_) | StoreError::MissingId | StoreError::Migration { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        metrics::counter!("soc_api_store_errors_total").increment(1);
        tracing::warn!(error = %e, "store error answering API request");
        ApiError { status, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Query parameters of `GET /api/events`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Comma-separated list of segments.
    pub segment: Option<String>,
    pub sensor: Option<String>,
    pub host: Option<String>,
    pub ip: Option<String>,
    pub flow_id: Option<u64>,
    pub community_id: Option<String>,
    pub limit: Option<usize>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
}

/// Parses a time parameter: RFC 3339 / EVE timestamps, or a relative age like `15m`, `2h`,
/// `7d` (meaning "that long ago"), or seconds since the epoch.
pub fn parse_time(name: &str, s: &str, now: Timestamp) -> Result<Timestamp, ApiError> {
    let s = s.trim();
    if let Some((num, unit)) = s.char_indices().last().map(|(i, c)| (&s[..i], c)) {
        let mult: Option<i64> = match unit {
            's' => Some(1),
            'm' => Some(60),
            'h' => Some(3600),
            'd' => Some(86_400),
            _ => None,
        };
        if let (Some(m), Ok(n)) = (mult, num.parse::<i64>()) {
            return Ok(now.add_micros(-n.saturating_mul(m).saturating_mul(1_000_000)));
        }
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(Timestamp::from_unix_micros(secs.saturating_mul(1_000_000)));
    }
    s.parse::<Timestamp>().map_err(|e| {
        ApiError::bad_request(format!(
            "parameter {name}: {e}; expected RFC 3339, epoch seconds or an age like 15m/2h/7d"
        ))
    })
}

impl EventsParams {
    pub fn to_query(&self, now: Timestamp) -> Result<EventQuery, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > soc_store::MAX_LIMIT {
            return Err(ApiError::bad_request(format!("parameter limit: must be 1..={}", soc_store::MAX_LIMIT)));
        }
        let newest_first = match self.order.as_deref() {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(o) => return Err(ApiError::bad_request(format!("parameter order: {o:?} is not asc or desc"))),
        };
        Ok(EventQuery {
            event_type: self.event_type.clone().filter(|s| !s.is_empty()),
            since: self.since.as_deref().map(|s| parse_time("since", s, now)).transpose()?,
            until: self.until.as_deref().map(|s| parse_time("until", s, now)).transpose()?,
            segments: self
                .segment
                .as_deref()
                .map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()),
            sensor: self.sensor.clone(),
            host: self.host.clone(),
            ip: self.ip.clone(),
            flow_id: self.flow_id,
            community_id: self.community_id.clone(),
            limit,
            newest_first,
        })
    }
}

async fn events(
    State(st): State<ApiState>,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let q = p.to_query(Timestamp::now())?;
    let rows = st.store.query_events(&q).await?;
    Ok(Json(json!({ "count": rows.len(), "events": rows })).into_response())
}

/// Query parameters of `GET /api/stats`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    pub since: Option<String>,
    pub until: Option<String>,
    pub segment: Option<String>,
}

async fn stats(
    State(st): State<ApiState>,
    params: Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let ep = EventsParams { since: p.since, until: p.until, segment: p.segment, ..Default::default() };
    let q = ep.to_query(Timestamp::now())?;
    let total = st.store.count_events(&q).await?;
    let by_type = st.store.count_by(CountBy::EventType, &q).await?;
    let by_segment = st.store.count_by(CountBy::Segment, &q).await?;
    let obj = |v: Vec<(String, u64)>| v.into_iter().map(|(k, n)| json!({"key": k, "count": n})).collect::<Vec<_>>();
    Ok(Json(json!({ "total": total, "by_type": obj(by_type), "by_segment": obj(by_segment) })).into_response())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(st): State<ApiState>) -> Response {
    match st.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store not ready: {e}\n")).into_response(),
    }
}

async fn metrics_text(State(st): State<ApiState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], (st.metrics)()).into_response()
}

async fn not_found() -> ApiError {
    ApiError { status: StatusCode::NOT_FOUND, message: "no such endpoint".into() }
}

/// The API router. The binary merges further routes (e.g. the collector's ingest endpoint).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/events", get(events))
        .route("/api/stats", get(stats))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_times_parse() {
        let now = Timestamp::from_unix_micros(10_000_000_000);
        assert_eq!(parse_time("since", "15m", now).unwrap().unix_secs(), 10_000 - 900);
        assert_eq!(parse_time("since", "2d", now).unwrap().unix_secs(), 10_000 - 172_800);
        assert_eq!(parse_time("since", "1588316794", now).unwrap().unix_secs(), 1_588_316_794);
        assert_eq!(parse_time("since", "2020-05-01T07:06:34Z", now).unwrap().unix_secs(), 1_588_316_794);
        let e = parse_time("since", "last tuesday", now).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("since"));
    }

    #[test]
    fn limits_and_order_are_validated() {
        let now = Timestamp::now();
        assert!(EventsParams { limit: Some(0), ..Default::default() }.to_query(now).is_err());
        assert!(EventsParams { limit: Some(1_000_000), ..Default::default() }.to_query(now).is_err());
        assert!(EventsParams { order: Some("up".into()), ..Default::default() }.to_query(now).is_err());
        let q = EventsParams { segment: Some("cpnet, ministry".into()), ..Default::default() }.to_query(now).unwrap();
        assert_eq!(q.segments, Some(vec!["cpnet".to_string(), "ministry".to_string()]));
        assert_eq!(q.limit, 100);
        assert!(q.newest_first);
    }
}
