//! The audit log: every login, logout, write and refused write, append-only (see
//! [`crate::state`]), readable by admins and auditors at `GET /api/audit`.

use crate::auth::{Principal, Role};
use crate::{ApiError, ApiState};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use soc_model::Timestamp;

/// Appends an entry; failures are logged and counted (the action itself already happened).
pub(crate) fn record(st: &ApiState, actor: &str, action: &str, target: &str, detail: &str, outcome: &str) {
    metrics::counter!("soc_api_audit_entries_total", "outcome" => outcome.to_string()).increment(1);
    if let Err(e) = st.db.append_audit(Timestamp::now().unix_micros(), actor, action, target, detail, outcome) {
        metrics::counter!("soc_api_audit_errors_total").increment(1);
        tracing::error!(error = %e, actor, action, target, "cannot write the audit log");
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

/// `GET /api/audit?page&per_page`: newest first (admins and auditors).
pub async fn list(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    if who.role == Role::Analyst {
        return Err(ApiError::forbidden("the audit log is for admins and auditors"));
    }
    let p = crate::query(params)?;
    let page = p.page.unwrap_or(1).max(1);
    let per_page = p.per_page.unwrap_or(100);
    if per_page == 0 || per_page > 1000 {
        return Err(ApiError::bad_request("parameter per_page: must be 1..=1000"));
    }
    let (total, items) = st.db.audit_page((page - 1).saturating_mul(per_page), per_page)?;
    let items: Vec<_> = items
        .into_iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "timestamp": Timestamp::from_unix_micros(e.ts_us),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "detail": e.detail,
                "outcome": e.outcome,
                "hash": e.hash,
            })
        })
        .collect();
    Ok(Json(json!({ "total": total, "page": page, "per_page": per_page, "items": items })).into_response())
}
