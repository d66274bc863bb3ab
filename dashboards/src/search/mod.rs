//! `GET /api/search?q=&since=&until=&limit=`: the query language ([`parse`]) compiled by the
//! store to bound SQL, within the caller's data scope, a time range (the last 24 hours when
//! `since` is absent) and a row limit.

pub mod parse;

use crate::auth::Principal;
use crate::{ApiError, ApiState};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use soc_model::Timestamp;
use soc_store::EventQuery;
use soc_store::search::{SearchQuery, SearchResult};

/// Default look-back of a search without `since`.
pub const DEFAULT_RANGE_MICROS: i64 = 24 * 3600 * 1_000_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    pub q: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

pub async fn search(
    State(st): State<ApiState>,
    Extension(who): Extension<Principal>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = crate::query(params)?;
    let text = p.q.unwrap_or_default();
    let parsed = match parse::parse(&text) {
        Ok(x) => x,
        Err(e) => {
            metrics::counter!("soc_api_search_syntax_errors_total").increment(1);
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": e.message, "position": e.position, "query": text })),
            )
                .into_response());
        }
    };
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > soc_store::MAX_LIMIT {
        return Err(ApiError::bad_request(format!("parameter limit: must be 1..={}", soc_store::MAX_LIMIT)));
    }
    let now = Timestamp::now();
    let (since, until) = crate::time_range(p.since.as_deref(), p.until.as_deref(), now)?;
    let since = since.unwrap_or_else(|| now.add_micros(-DEFAULT_RANGE_MICROS));
    let q = SearchQuery {
        base: EventQuery {
            since: Some(since),
            until,
            segments: who.scope(None),
            limit,
            newest_first: true,
            ..Default::default()
        },
        filter: parsed.filter,
        count_by: parsed.count_by,
    };
    st.audit(&who.username, "search", &text, "", "ok");
    Ok(match st.store.search(&q).await? {
        SearchResult::Events(events) => Json(json!({ "query": text, "events": events })).into_response(),
        SearchResult::Counts(c) => {
            let counts: Vec<_> = c.into_iter().map(|(k, n)| json!({ "key": k, "count": n })).collect();
            Json(json!({ "query": text, "counts": counts })).into_response()
        }
    })
}
