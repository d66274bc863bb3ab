//! The dashboard's HTTP API over the store, with local users, sessions and data scopes.
//!
//! Open routes: `POST /api/login`, `GET /api/openapi.json` (the OpenAPI 3 document of every
//! route, see [`openapi`]), `GET /healthz`, `GET /readyz`, `GET /metrics`. Every other `/api/`
//! route needs the `soc_session` cookie (401 otherwise); writes also need the
//! `X-CSRF-Token` header of the session (403 otherwise) and a role other than `auditor`.
//! Analysts and auditors with a segment list see only rows of those segments, in every
//! endpoint. Every action is written to the append-only audit log ([`state`]).
//!
//! Bad requests get `400` with `{"error": "..."}` naming the parameter; store failures `503`
//! (outage) or `500` (a failing query).
#![forbid(unsafe_code)]

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod headers;
pub mod incidents;
pub mod openapi;
pub mod search;
pub mod state;
pub mod stats;
pub mod ui;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use soc_model::Timestamp;
use soc_store::{EventQuery, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use auth::{AdminBootstrap, Principal, Role};
pub use state::StateDb;

/// Renders the process's Prometheus metrics.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// Renders the STIX 2.1 bundle the NCSC forwarder sends for an incident (the binary passes
/// the forwarder's `outgoing_bundle` with its redaction and identity settings).
#[derive(Clone)]
pub struct StixRenderer(pub Arc<dyn Fn(&soc_model::Incident) -> serde_json::Value + Send + Sync>);

impl std::fmt::Debug for StixRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StixRenderer")
    }
}

/// How the dashboard runs.
#[derive(Clone, Debug)]
pub struct DashboardOptions {
    /// The state database (users, sessions, audit, triage); `None`: in memory (tests).
    pub state_db: Option<PathBuf>,
    /// Adds `Secure` to the session cookie and sends HSTS (set when served over TLS).
    pub secure_cookie: bool,
    /// Lifetime of a session from login.
    pub session_ttl: Duration,
    /// Failed logins for one user name before logins are refused with 429 (per client address:
    /// four times as many, over all names).
    pub max_login_failures: u32,
    /// How long a throttled user name stays refused.
    pub login_lockout: Duration,
    /// `GET /api/incidents/{id}/stix` answers 501 without it (no forwarding configured).
    pub stix: Option<StixRenderer>,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            state_db: None,
            secure_cookie: false,
            session_ttl: Duration::from_secs(12 * 3600),
            max_login_failures: 5,
            login_lockout: Duration::from_secs(15 * 60),
            stix: None,
        }
    }
}

/// Errors opening the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot create the admin account: {0}")]
    Bootstrap(String),
}

/// Shared state of the API.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub metrics: MetricsRender,
    pub db: Arc<StateDb>,
    pub options: Arc<DashboardOptions>,
    pub throttle: Arc<auth::Throttle>,
    /// Failed logins per client address (any user name): [`auth::IP_FACTOR`] times the
    /// per-name limit.
    pub ip_throttle: Arc<auth::Throttle>,
}

impl ApiState {
    /// Opens the state database of `options`.
    pub fn new(
        store: Arc<dyn Store>,
        metrics: MetricsRender,
        options: DashboardOptions,
    ) -> Result<Self, DashboardError> {
        let db = StateDb::open(options.state_db.as_deref())?;
        let throttle = auth::Throttle::new(options.max_login_failures, options.login_lockout);
        let ip_throttle =
            auth::Throttle::new(options.max_login_failures.saturating_mul(auth::IP_FACTOR), options.login_lockout);
        Ok(ApiState {
            store,
            metrics,
            db: Arc::new(db),
            options: Arc::new(options),
            throttle: Arc::new(throttle),
            ip_throttle: Arc::new(ip_throttle),
        })
    }

    /// Creates the `admin` account when there are no users yet: with `password` when given
    /// (e.g. from `SOC_ADMIN_PASSWORD`), else with a generated one the caller prints once.
    pub fn bootstrap_admin(&self, password: Option<&str>) -> Result<AdminBootstrap, DashboardError> {
        auth::bootstrap_admin(self, password)
    }

    /// Appends an audit entry; a failure is logged and counted, never hidden.
    pub fn audit(&self, actor: &str, action: &str, target: &str, detail: &str, outcome: &str) {
        audit::record(self, actor, action, target, detail, outcome)
    }
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
    pub fn unauthorized() -> Self {
        ApiError { status: StatusCode::UNAUTHORIZED, message: "authentication required".into() }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::FORBIDDEN, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::CONFLICT, message: message.into() }
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

impl From<state::StateError> for ApiError {
    fn from(e: state::StateError) -> Self {
        metrics::counter!("soc_api_state_errors_total").increment(1);
        tracing::error!(error = %e, "dashboard state database error");
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// Maps a query-string rejection to a 400 naming the problem.
pub(crate) fn query<T>(r: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    r.map(|Query(p)| p).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Maps a JSON body rejection to a 400.
pub(crate) fn body<T>(r: Result<Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, ApiError> {
    r.map(|Json(b)| b).map_err(|e| ApiError::bad_request(e.body_text()))
}

/// Splits a comma-separated parameter.
pub(crate) fn list(s: Option<&str>) -> Option<Vec<String>> {
    s.map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
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

/// Parses optional `since`/`until` parameters.
pub(crate) fn time_range(
    since: Option<&str>,
    until: Option<&str>,
    now: Timestamp,
) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    Ok((
        since.map(|s| parse_time("since", s, now)).transpose()?,
        until.map(|s| parse_time("until", s, now)).transpose()?,
    ))
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
        let (since, until) = time_range(self.since.as_deref(), self.until.as_deref(), now)?;
        Ok(EventQuery {
            event_type: self.event_type.clone().filter(|s| !s.is_empty()),
            since,
            until,
            segments: list(self.segment.as_deref()),
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
    Extension(who): Extension<Principal>,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = query(params)?;
    let mut q = p.to_query(Timestamp::now())?;
    q.segments = who.scope(q.segments.take());
    let rows = st.store.query_events(&q).await?;
    Ok(Json(json!({ "count": rows.len(), "events": rows })).into_response())
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
    ApiError::not_found("no such endpoint")
}

/// The API router. The binary merges further routes (the web UI, [`ui::ui_router`], and the
/// collector's ingest endpoint).
pub fn router(state: ApiState) -> Router {
    let protected = Router::new()
        .route("/api/me", get(auth::me))
        .route("/api/logout", post(auth::logout))
        .route("/api/events", get(events))
        .route("/api/stats", get(stats::stats))
        .route("/api/search", get(search::search))
        .route("/api/alerts", get(alerts::list))
        .route("/api/alerts/{id}", get(alerts::detail))
        .route("/api/alerts/{id}/related", get(alerts::related))
        .route("/api/alerts/{id}/actions", post(alerts::action))
        .route("/api/incidents", get(incidents::list))
        .route("/api/incidents/{id}", get(incidents::detail))
        .route("/api/incidents/{id}/status", post(incidents::set_status))
        .route("/api/incidents/{id}/assign", post(incidents::assign))
        .route("/api/incidents/{id}/comments", post(incidents::comment))
        .route("/api/incidents/{id}/stix", get(incidents::stix))
        .route("/api/forwarding", get(incidents::forwarding))
        .route("/api/sensors", get(stats::sensors))
        .route("/api/audit", get(audit::list))
        .route("/api/users", get(auth::users::list).post(auth::users::create))
        .route("/api/users/{name}", patch(auth::users::update).delete(auth::users::remove))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_session));
    Router::new()
        .route("/api/login", post(auth::login))
        .route("/api/openapi.json", get(openapi::document))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(protected)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), headers::security_headers))
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
