//! Alerts: sensor `alert` records and correlator `detection` records, read from the store's
//! alerts table (one row per alert with its triage state: status, assignee, verdict,
//! incident; see `soc_store::alerts`).
//!
//! - `GET /api/alerts`: filter, sort, page;
//! - `GET /api/alerts/{id}`: one alert with its raw record;
//! - `GET /api/alerts/{id}/related?by=flow|host|ip`: pivot to the records of the same flow
//!   (flow id, else Community ID), host or IP;
//! - `POST /api/alerts/{id}/actions`: acknowledge, assign, escalate, close, suppress.
//!
//! Every filter (severity, rule, status, segment, sensor, ip, time), the order and the page
//! are applied by the store, so totals are exact whatever the range holds. The store is the
//! source of truth of the triage state: an action writes the next version of the alert's row
//! ([`soc_store::Store::update_alert`]) and an entry in the dashboard's audit log (with the
//! comment). "Suppress similar" is a rule kept in the dashboard's database (every alert of
//! the same rule in the same segment, later ones included); lists pass the rules to the
//! store, which reports a matching `new` alert as `suppressed`.

use crate::auth::Principal;
use crate::{ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use soc_model::{Event, Incident, IncidentAlert, IncidentChange, IncidentStatus, Level, Timestamp};
use soc_store::{AlertQuery, AlertRecord, AlertSort, AlertState, EventQuery, MAX_LIMIT, Suppression};

/// Alert statuses.
pub const STATUSES: [&str; 4] = soc_store::alerts::STATUSES;
/// How deep pages of `GET /api/alerts` reach (page × per_page).
pub const MAX_DEPTH: usize = 100_000;
/// Close verdicts.
pub const VERDICTS: [&str; 3] = ["true_positive", "false_positive", "benign"];

/// One alert as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertView {
    pub id: String,
    pub timestamp: Timestamp,
    /// `suricata` for sensor alerts; the detection engine (`sigma`, `ioc`, ...) otherwise.
    pub engine: String,
    pub rule_id: String,
    pub rule_title: String,
    pub severity: Level,
    pub category: Option<String>,
    pub segment: Option<String>,
    pub sensor: Option<String>,
    pub host: Option<String>,
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    pub dest_ip: Option<String>,
    pub dest_port: Option<u16>,
    pub proto: Option<String>,
    pub app_proto: Option<String>,
    pub flow_id: Option<u64>,
    pub community_id: Option<String>,
    pub status: String,
    pub assignee: Option<String>,
    pub verdict: Option<String>,
    pub incident_id: Option<String>,
    /// Occurrences the alert stands for (deduplicated alerts count more than one).
    pub count: u64,
    /// MITRE ATT&CK and other tags.
    pub tags: Vec<String>,
    /// `ip:...`, `host:...`, `user:...`.
    pub entities: Vec<String>,
}

impl AlertView {
    /// The alert view of a record, when it is an alert or a detection.
    pub fn of(e: &Event) -> Option<AlertView> {
        let (engine, rule_id, rule_title, severity, category) = if let Some(a) = &e.alert {
            (
                "suricata".to_string(),
                a.signature_id.map(|s| s.to_string()).unwrap_or_default(),
                a.signature.clone().unwrap_or_default(),
                Level::from_suricata_severity(a.severity.unwrap_or(3)),
                a.category.clone(),
            )
        } else if let Some(d) = &e.detection {
            (
                d.engine.clone(),
                d.rule_id.clone(),
                d.rule_title.clone(),
                d.level,
                d.logsource.as_ref().and_then(|l| l.category.clone()),
            )
        } else {
            return None;
        };
        Some(AlertView {
            id: e.id.clone()?,
            timestamp: e.timestamp,
            engine,
            rule_id,
            rule_title,
            severity,
            category,
            segment: e.segment.clone(),
            sensor: e.sensor.clone(),
            host: e.host.clone(),
            src_ip: e.src_ip.clone(),
            src_port: e.src_port,
            dest_ip: e.dest_ip.clone(),
            dest_port: e.dest_port,
            proto: e.proto.clone(),
            app_proto: e.app_proto.clone(),
            flow_id: e.flow_id,
            community_id: e.community_id.clone(),
            status: "new".into(),
            assignee: None,
            verdict: None,
            incident_id: None,
            count: 1,
            tags: Vec::new(),
            entities: Vec::new(),
        })
    }

    /// The view of a stored alert row, with its triage state.
    pub fn of_record(r: &AlertRecord) -> Option<AlertView> {
        let mut v = AlertView::of(&r.event)?;
        v.id = r.id.clone();
        v.engine = r.kind.clone();
        v.rule_id = r.rule_id.clone();
        v.rule_title = r.rule_title.clone();
        v.severity = r.severity;
        v.status = r.state.status.clone();
        v.assignee = r.state.owner.clone();
        v.verdict = r.state.verdict.clone();
        v.incident_id = r.state.incident_id.clone();
        v.count = r.count;
        v.tags = r.tags.clone();
        v.entities = r.entities.clone();
        Some(v)
    }

    /// Key of "similar" alerts for suppression: the engine and the rule.
    pub fn rule_key(&self) -> String {
        format!("{}:{}", self.engine, self.rule_id)
    }
}

/// The "suppress similar" rules of the dashboard's database, for the store.
fn suppressions(st: &ApiState) -> Result<Vec<Suppression>, ApiError> {
    Ok(st
        .db
        .suppressions()?
        .into_iter()
        .filter_map(|(key, segment)| {
            let (kind, rule_id) = key.split_once(':')?;
            Some(Suppression { kind: kind.to_string(), rule_id: rule_id.to_string(), segment })
        })
        .collect())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    pub since: Option<String>,
    pub until: Option<String>,
    /// Comma-separated levels (`high,critical`).
    pub severity: Option<String>,
    /// Rule id (exact) or a part of the rule title (case-insensitive).
    pub rule: Option<String>,
    pub segment: Option<String>,
    pub sensor: Option<String>,
    pub ip: Option<String>,
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// `time` (default) or `severity`.
    pub sort: Option<String>,
    /// `desc` (default) or `asc`.
    pub order: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

fn parse_levels(s: &str) -> Result<Vec<Level>, ApiError> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            serde_json::from_value::<Level>(json!(x)).map_err(|_| {
                ApiError::bad_request(format!(
                    "parameter severity: {x:?} is not informational, low, medium, high or critical"
                ))
            })
        })
        .collect()
}

/// `GET /api/alerts`.
pub async fn list(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let now = Timestamp::now();
    let (since, until) = crate::time_range(p.since.as_deref(), p.until.as_deref(), now)?;
    let page = p.page.unwrap_or(1).max(1);
    let per_page = p.per_page.unwrap_or(50);
    if per_page == 0 || per_page > 1000 {
        return Err(ApiError::bad_request("parameter per_page: must be 1..=1000"));
    }
    let by_severity = match p.sort.as_deref() {
        None | Some("time") => false,
        Some("severity") => true,
        Some(s) => return Err(ApiError::bad_request(format!("parameter sort: {s:?} is not time or severity"))),
    };
    let desc = match p.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(o) => return Err(ApiError::bad_request(format!("parameter order: {o:?} is not asc or desc"))),
    };
    let levels = p.severity.as_deref().map(parse_levels).transpose()?;
    let statuses = crate::list(p.status.as_deref());
    if let Some(bad) = statuses.iter().flatten().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(ApiError::bad_request(format!("parameter status: {bad:?} is not one of {STATUSES:?}")));
    }
    let rule = p.rule.clone().filter(|r| !r.is_empty());
    let q = AlertQuery {
        since,
        until,
        segments: who.scope(crate::list(p.segment.as_deref())),
        sensor: p.sensor.clone().filter(|s| !s.is_empty()),
        ip: p.ip.clone().filter(|s| !s.is_empty()),
        severities: levels,
        rule,
        statuses,
        id: None,
        suppressions: suppressions(&st)?,
        sort: if by_severity { AlertSort::Severity } else { AlertSort::Time },
        descending: desc,
        offset: (page - 1).saturating_mul(per_page),
        limit: per_page,
    };
    if q.offset.saturating_add(per_page) > MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "parameter page: pages reach at most the first {MAX_DEPTH} alerts; narrow the filters"
        )));
    }
    let found = st.store.query_alerts(&q).await?;
    let items: Vec<AlertView> = found.items.iter().filter_map(AlertView::of_record).collect();
    Ok(Json(json!({ "total": found.total, "page": page, "per_page": per_page, "truncated": false, "items": items }))
        .into_response())
}

/// Reads one alert by id, within the caller's scope.
pub(crate) async fn load(st: &ApiState, who: &Principal, id: &str) -> Result<(Event, AlertView), ApiError> {
    load_as(st, who, id, true).await
}

/// [`load`]; with `displayed` false the status is the stored one (a `new` alert that a
/// "suppress similar" rule hides stays `new`, so an action does not store `suppressed`).
async fn load_as(st: &ApiState, who: &Principal, id: &str, displayed: bool) -> Result<(Event, AlertView), ApiError> {
    let q = AlertQuery {
        id: Some(id.to_string()),
        segments: who.scope(None),
        suppressions: if displayed { suppressions(st)? } else { Vec::new() },
        limit: 1,
        ..Default::default()
    };
    let rec = st.store.query_alerts(&q).await?.items.into_iter().next();
    let view = rec.as_ref().and_then(AlertView::of_record);
    match (rec, view) {
        (Some(r), Some(v)) => Ok((r.event, v)),
        _ => Err(ApiError::not_found(format!("no alert {id:?}"))),
    }
}

/// `GET /api/alerts/{id}`: the alert's fields plus `event`, the raw record.
pub async fn detail(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (ev, view) = load(&st, &who, &id).await?;
    let mut v = serde_json::to_value(&view).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("event".into(), serde_json::to_value(&ev).unwrap_or_default());
    }
    Ok(Json(v).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedParams {
    /// `flow` (default), `host` or `ip`.
    pub by: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// `GET /api/alerts/{id}/related?by=flow|host|ip`.
pub async fn related(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    params: Result<Query<RelatedParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let limit = p.limit.unwrap_or(200);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("parameter limit: must be 1..={MAX_LIMIT}")));
    }
    let (since, until) = crate::time_range(p.since.as_deref(), p.until.as_deref(), Timestamp::now())?;
    let (ev, _) = load(&st, &who, &id).await?;
    let mut q =
        EventQuery { since, until, segments: who.scope(None), limit, newest_first: false, ..Default::default() };
    let by = p.by.as_deref().unwrap_or("flow");
    match by {
        "flow" => {
            if ev.flow_id.is_some() {
                q.flow_id = ev.flow_id;
            } else if ev.community_id.is_some() {
                q.community_id = ev.community_id.clone();
            } else {
                return Err(ApiError::bad_request("the alert has neither flow_id nor community_id"));
            }
        }
        "host" => q.host = Some(ev.host.clone().ok_or_else(|| ApiError::bad_request("the alert has no host"))?),
        "ip" => q.ip = Some(ev.src_ip.clone().ok_or_else(|| ApiError::bad_request("the alert has no src_ip"))?),
        other => return Err(ApiError::bad_request(format!("parameter by: {other:?} is not flow, host or ip"))),
    }
    let events = st.store.query_events(&q).await?;
    Ok(Json(json!({ "by": by, "alert_id": id, "events": events })).into_response())
}

/// Body of `POST /api/alerts/{id}/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub action: String,
    pub assignee: Option<String>,
    pub verdict: Option<String>,
    pub comment: Option<String>,
    pub incident_id: Option<String>,
}

/// The incident summary of an alert record.
fn incident_alert(ev: &Event, v: &AlertView) -> IncidentAlert {
    IncidentAlert {
        id: v.id.clone(),
        timestamp: v.timestamp,
        engine: v.engine.clone(),
        rule_id: v.rule_id.clone(),
        rule_title: v.rule_title.clone(),
        level: v.severity,
        segment: v.segment.clone(),
        sensor: v.sensor.clone(),
        host: v.host.clone(),
        user: None,
        src_ip: v.src_ip.clone(),
        src_port: v.src_port,
        dest_ip: v.dest_ip.clone(),
        dest_port: v.dest_port,
        proto: v.proto.clone(),
        app_proto: v.app_proto.clone(),
        flow_id: v.flow_id,
        community_id: v.community_id.clone(),
        observables: ev
            .http
            .as_ref()
            .and_then(|h| h.hostname.clone())
            .map(|d| vec![format!("domain:{d}")])
            .unwrap_or_default(),
        tags: ev.detection.as_ref().map(|d| d.tags.clone()).unwrap_or_default(),
    }
}

/// Escalates an alert into a new incident or into `into` (which must be visible to `who`).
async fn escalate(
    st: &ApiState,
    who: &Principal,
    ev: &Event,
    v: &AlertView,
    into: Option<&str>,
) -> Result<String, ApiError> {
    let now = Timestamp::now();
    let mut inc = match into {
        Some(id) => {
            let inc =
                st.store.get_incident(id).await?.ok_or_else(|| ApiError::not_found(format!("no incident {id:?}")))?;
            if !who.sees_any(&inc.segments) {
                return Err(ApiError::not_found(format!("no incident {id:?}")));
            }
            inc
        }
        None => {
            let id = format!("INC-{}", &crate::auth::random_token()[..16]);
            let mut entities = Vec::new();
            for ip in [&v.src_ip, &v.dest_ip].into_iter().flatten() {
                entities.push(format!("ip:{ip}"));
            }
            if let Some(h) = &v.host {
                entities.push(format!("host:{h}"));
            }
            Incident {
                incident_id: id,
                version: 0,
                title: v.rule_title.clone(),
                severity: v.severity,
                status: IncidentStatus::New,
                owner: Some(who.username.clone()),
                entities,
                first_seen: Some(v.timestamp),
                ..Default::default()
            }
        }
    };
    if inc.alert_ids.contains(&v.id) {
        return Ok(inc.incident_id);
    }
    inc.version += 1;
    inc.alert_ids.push(v.id.clone());
    inc.alert_count += 1;
    inc.alerts.push(incident_alert(ev, v));
    if let Some(s) = &v.segment
        && !inc.segments.contains(s)
    {
        inc.segments.push(s.clone());
    }
    if let Some(f) = v.flow_id
        && !inc.flow_ids.contains(&f)
    {
        inc.flow_ids.push(f);
    }
    inc.severity = inc.severity.max(v.severity);
    inc.first_seen = Some(inc.first_seen.map_or(v.timestamp, |t| t.min(v.timestamp)));
    inc.last_seen = Some(inc.last_seen.map_or(v.timestamp, |t| t.max(v.timestamp)));
    inc.updated = Some(now);
    let action = if inc.version == 1 { "created" } else { "alerts_added" };
    inc.history.push(IncidentChange {
        at: now,
        actor: who.username.clone(),
        action: action.into(),
        detail: Some(format!("escalated alert {}", v.id)),
        version: inc.version,
    });
    st.store.upsert_incidents(std::slice::from_ref(&inc)).await?;
    Ok(inc.incident_id)
}

/// `POST /api/alerts/{id}/actions`.
pub async fn action(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    b: Result<Json<ActionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let b = crate::body(b)?;
    let (ev, mut view) = load_as(&st, &who, &id, false).await?;
    let mut s = AlertState {
        status: view.status.clone(),
        owner: view.assignee.clone(),
        verdict: view.verdict.clone(),
        incident_id: view.incident_id.clone(),
    };
    let now = Timestamp::now().unix_micros();
    match b.action.as_str() {
        "acknowledge" => s.status = "acknowledged".into(),
        "assign" => {
            let a = b
                .assignee
                .clone()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ApiError::bad_request("assignee: required"))?;
            if st.db.user(&a)?.is_none() {
                return Err(ApiError::bad_request(format!("assignee: no user {a:?}")));
            }
            s.owner = Some(a);
            if s.status == "new" {
                s.status = "acknowledged".into();
            }
        }
        "escalate" => {
            let inc = escalate(&st, &who, &ev, &view, b.incident_id.as_deref()).await?;
            s.incident_id = Some(inc);
            if s.status == "new" {
                s.status = "acknowledged".into();
            }
        }
        "close" => {
            let v = b.verdict.clone().ok_or_else(|| ApiError::bad_request("verdict: required to close"))?;
            if !VERDICTS.contains(&v.as_str()) {
                return Err(ApiError::bad_request(format!("verdict: {v:?} is not one of {VERDICTS:?}")));
            }
            s.verdict = Some(v);
            s.status = "closed".into();
        }
        "suppress" => {
            st.db.add_suppression(&view.rule_key(), view.segment.as_deref().unwrap_or(""), now, &who.username)?;
            s.status = "suppressed".into();
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "action: {other:?} is not acknowledge, assign, escalate, close or suppress"
            )));
        }
    }
    if st.store.update_alert(&id, &s).await?.is_none() {
        return Err(ApiError::not_found(format!("no alert {id:?}")));
    }
    let detail = json!({
        "status": s.status, "assignee": s.owner, "verdict": s.verdict,
        "incident_id": s.incident_id, "comment": b.comment,
    });
    st.audit(&who.username, &format!("alert.{}", b.action), &id, &detail.to_string(), "ok");
    view.status = s.status;
    view.assignee = s.owner;
    view.verdict = s.verdict;
    view.incident_id = s.incident_id;
    Ok(Json(view).into_response())
}
