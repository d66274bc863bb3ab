//! Incidents (from the store) and their forwarding to the NCSC.
//!
//! Every analyst change (status, owner, comment) writes a new incident version with a
//! history entry, through [`soc_store::Store::upsert_incidents`]; the audit log records it.
//! An incident is visible to a scoped user when one of its segments is in scope.

use crate::auth::Principal;
use crate::{ApiError, ApiState};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use soc_model::{Incident, IncidentChange, IncidentStatus, Level, Timestamp};
use soc_store::{IncidentQuery, MAX_LIMIT};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// Comma-separated statuses.
    pub status: Option<String>,
    /// Minimum severity.
    pub severity: Option<String>,
    pub segment: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

fn parse_status(s: &str) -> Result<IncidentStatus, ApiError> {
    serde_json::from_value(json!(s)).map_err(|_| {
        ApiError::bad_request(format!(
            "status {s:?}: expected new, acknowledged, investigating, resolved or false_positive"
        ))
    })
}

/// `GET /api/incidents`.
pub async fn list(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<IncidentParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let page = p.page.unwrap_or(1).max(1);
    let per_page = p.per_page.unwrap_or(50);
    if per_page == 0 || per_page > 1000 {
        return Err(ApiError::bad_request("parameter per_page: must be 1..=1000"));
    }
    let status = crate::list(p.status.as_deref())
        .map(|v| v.iter().map(|s| parse_status(s)).collect::<Result<Vec<_>, ApiError>>())
        .transpose()?;
    let min_severity = p
        .severity
        .as_deref()
        .map(|s| {
            serde_json::from_value::<Level>(json!(s))
                .map_err(|_| ApiError::bad_request(format!("parameter severity: {s:?} is not a level")))
        })
        .transpose()?;
    let (since, until) = crate::time_range(p.since.as_deref(), p.until.as_deref(), Timestamp::now())?;
    let q = IncidentQuery {
        status,
        min_severity,
        segments: who.scope(crate::list(p.segment.as_deref())),
        since,
        until,
        limit: per_page,
        offset: (page - 1).saturating_mul(per_page),
        ..Default::default()
    };
    let total = st.store.count_incidents(&q).await?;
    let items = st.store.query_incidents(&q).await?;
    Ok(Json(json!({ "total": total, "page": page, "per_page": per_page, "items": items })).into_response())
}

/// Reads an incident visible to `who` (404 otherwise: out-of-scope ids are not disclosed).
async fn load(st: &ApiState, who: &Principal, id: &str) -> Result<Incident, ApiError> {
    match st.store.get_incident(id).await? {
        Some(i) if who.sees_any(&i.segments) => Ok(i),
        _ => Err(ApiError::not_found(format!("no incident {id:?}"))),
    }
}

/// `GET /api/incidents/{id}`: the incident (its alerts are the evidence, its history the
/// timeline) and its forwarding records, newest first.
pub async fn detail(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inc = load(&st, &who, &id).await?;
    let fwd = st.store.query_forwarding(Some(&id), 200).await?;
    Ok(Json(json!({ "incident": inc, "forwarding": fwd })).into_response())
}

/// Writes the next version of an incident with one history entry.
async fn change(
    st: &ApiState,
    who: &Principal,
    mut inc: Incident,
    action: &str,
    detail: Option<String>,
) -> Result<Incident, ApiError> {
    let now = Timestamp::now();
    inc.version += 1;
    inc.updated = Some(now);
    inc.history.push(IncidentChange {
        at: now,
        actor: who.username.clone(),
        action: action.into(),
        detail: detail.clone(),
        version: inc.version,
    });
    st.store.upsert_incidents(std::slice::from_ref(&inc)).await?;
    st.audit(&who.username, &format!("incident.{action}"), &inc.incident_id, detail.as_deref().unwrap_or(""), "ok");
    Ok(inc)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    pub status: String,
    pub comment: Option<String>,
}

/// `POST /api/incidents/{id}/status`.
pub async fn set_status(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    b: Result<Json<StatusBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let b = crate::body(b)?;
    let status = parse_status(&b.status)?;
    let mut inc = load(&st, &who, &id).await?;
    inc.status = status;
    let detail = match &b.comment {
        Some(c) => format!("{}: {c}", b.status),
        None => b.status.clone(),
    };
    Ok(Json(change(&st, &who, inc, "status", Some(detail)).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub owner: String,
}

/// `POST /api/incidents/{id}/assign`.
pub async fn assign(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    b: Result<Json<AssignBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let b = crate::body(b)?;
    if st.db.user(&b.owner)?.is_none() {
        return Err(ApiError::bad_request(format!("owner: no user {:?}", b.owner)));
    }
    let mut inc = load(&st, &who, &id).await?;
    inc.owner = Some(b.owner.clone());
    Ok(Json(change(&st, &who, inc, "owner", Some(b.owner)).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub text: String,
}

/// Longest comment accepted, in characters.
pub const MAX_COMMENT: usize = 10_000;

/// `POST /api/incidents/{id}/comments`.
pub async fn comment(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    b: Result<Json<CommentBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let b = crate::body(b)?;
    if b.text.trim().is_empty() || b.text.chars().count() > MAX_COMMENT {
        return Err(ApiError::bad_request(format!("text: 1..={MAX_COMMENT} characters")));
    }
    let inc = load(&st, &who, &id).await?;
    Ok(Json(change(&st, &who, inc, "comment", Some(b.text)).await?).into_response())
}

/// `GET /api/forwarding`: the latest forwarding record of each incident in scope.
pub async fn forwarding(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
) -> Result<Response, ApiError> {
    let records = st.store.query_forwarding(None, MAX_LIMIT).await?;
    let mut seen = HashSet::new();
    let mut visible: HashMap<String, bool> = HashMap::new();
    let mut items = Vec::new();
    for r in records {
        let Some(f) = &r.forwarding else { continue };
        if !seen.insert(f.incident_id.clone()) {
            continue;
        }
        let ok = match visible.get(&f.incident_id) {
            Some(v) => *v,
            None => {
                let v = who.segments.is_none()
                    || st.store.get_incident(&f.incident_id).await?.is_some_and(|i| who.sees_any(&i.segments));
                visible.insert(f.incident_id.clone(), v);
                v
            }
        };
        if ok {
            items.push(r);
        }
    }
    Ok(Json(json!({ "items": items })).into_response())
}

/// `GET /api/incidents/{id}/stix`: the STIX 2.1 bundle the forwarder sends for the
/// incident's current version (redacted as sent); 501 when this process does not forward.
pub async fn stix(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let inc = load(&st, &who, &id).await?;
    let Some(render) = &st.options.stix else {
        return Err(ApiError {
            status: axum::http::StatusCode::NOT_IMPLEMENTED,
            message: "NCSC forwarding is not configured in this process".into(),
        });
    };
    Ok(Json((render.0)(&inc)).into_response())
}
