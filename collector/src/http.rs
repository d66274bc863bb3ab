//! HTTP input: `POST /api/ingest` and an Elasticsearch `_bulk`-compatible endpoint, as an
//! axum [`Router`] (served by the collector's own listener, `[inputs.http]`, and merged into
//! the API of `soc run`).
//!
//! * `POST /api/ingest`: one JSON object, a JSON array, JSON lines (and, as `text/plain`,
//!   syslog lines) — see [`crate::ingest`]. Answers `{"accepted": n, "dead_letters": d}` once
//!   everything is on the bus.
//! * `POST /_bulk`, `POST /{index}/_bulk` (also `PUT`): NDJSON action/source pairs as
//!   Elasticsearch takes them, so Winlogbeat, Filebeat and Logstash's elasticsearch output
//!   ship without changes. `index` and `create` carry a source; `delete` has none (answered
//!   `404 not_found`, nothing stored); `update` is refused per item (`400`). The answer has
//!   Elasticsearch's shape: `took`, `errors`, and one item per action with its `status`
//!   (`201 created`, or `400` with `error.type`/`error.reason` for a source that could not be
//!   normalized, which goes to the dead-letter topic with that reason). The index name is kept
//!   in the event's `fields._index`.
//! * `GET /`, `HEAD /` and `GET /_license` answer like an Elasticsearch 8 node so shippers
//!   accept the endpoint; configure them with `setup.template.enabled: false` and
//!   `setup.ilm.enabled: false` (no index templates here).
//! * Bodies may be gzip-compressed (`Content-Encoding: gzip`, the Beats default).
//!
//! **Backpressure**: a request is answered only after its records are on the bus, and at most
//! `max_inflight` requests are parsed and published at once; beyond that the answer is `429`
//! (Elasticsearch's `es_rejected_execution_exception`, with `Retry-After`), which shippers
//! retry with backoff. When the bus fails, the answer is `503` and nothing of the request is
//! kept (the shipper re-sends it).

use crate::ingest::{IngestOutcome, parse_http_body_with, publish_outcome, stats};
use crate::parse::json::{Item, split_document};
use crate::parse::{self, ParseContext, ParseError};
use crate::sink::{SourceContext, stamp};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use soc_bus::Bus;
use soc_model::DeadLetter;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Largest accepted body (after decompression), by default.
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
/// Requests parsed and published at once, by default.
pub const DEFAULT_MAX_INFLIGHT: usize = 16;

/// The version the `GET /` answer claims (what Beats 8 check).
const ES_VERSION: &str = "8.11.0";

#[derive(Clone)]
struct HttpState {
    bus: Arc<dyn Bus>,
    ctx: Arc<SourceContext>,
    slots: Arc<Semaphore>,
    max_body: usize,
}

/// The HTTP input's routes. The server must provide `ConnectInfo<SocketAddr>`
/// (`into_make_service_with_connect_info`). `es_root` adds `GET|HEAD /` and `GET /_license`
/// (the collector's own listener; not where `/` is a web UI).
pub fn router(bus: Arc<dyn Bus>, ctx: SourceContext, max_body: usize, max_inflight: usize, es_root: bool) -> Router {
    let st = HttpState {
        bus,
        ctx: Arc::new(ctx),
        slots: Arc::new(Semaphore::new(max_inflight.max(1))),
        max_body: max_body.max(1),
    };
    let mut r = Router::new()
        .route("/api/ingest", post(ingest))
        .route("/_bulk", post(bulk_all).put(bulk_all))
        .route("/{index}/_bulk", post(bulk_index).put(bulk_index));
    if es_root {
        r = r.route("/", get(es_info).head(es_head)).route("/_license", get(es_license));
    }
    r.layer(DefaultBodyLimit::max(max_body.max(1))).with_state(st)
}

fn es_error(status: StatusCode, kind: &str, reason: String) -> Response {
    let mut r =
        (status, Json(json!({"error": {"type": kind, "reason": reason}, "status": status.as_u16()}))).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

/// The body, gunzipped when it says so; `Err` is the answer.
fn body_bytes(headers: &HeaderMap, body: &[u8], max: usize) -> Result<Vec<u8>, Box<Response>> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(body).take(max as u64 + 1);
    match dec.read_to_end(&mut out) {
        Ok(_) if out.len() > max => Err(Box::new(es_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "content_too_long_exception",
            format!("decompressed body exceeds {max} bytes"),
        ))),
        Ok(_) => Ok(out),
        Err(e) => {
            Err(Box::new(es_error(StatusCode::BAD_REQUEST, "parse_exception", format!("invalid gzip body: {e}"))))
        }
    }
}

fn busy() -> Response {
    es_error(
        StatusCode::TOO_MANY_REQUESTS,
        "es_rejected_execution_exception",
        "too many requests in progress; retry later".into(),
    )
}

async fn ingest(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(_slot) = st.slots.clone().try_acquire_owned() else {
        return busy();
    };
    let body = match body_bytes(&headers, &body, st.max_body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let outcome = parse_http_body_with(&body, ct, &peer.to_string(), &st.ctx);
    let (n, d) = (outcome.events.len(), outcome.dead_letters.len());
    match publish_outcome(st.bus.as_ref(), &outcome).await {
        Ok(()) => (StatusCode::OK, Json(json!({"accepted": n, "dead_letters": d}))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "ingest: bus unavailable");
            stats().dropped((n + d) as u64, "bus");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": format!("not accepted, retry later: {e}")})))
                .into_response()
        }
    }
}

async fn bulk_all(
    State(st): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    bulk(st, None, peer, headers, body).await
}

async fn bulk_index(
    State(st): State<HttpState>,
    Path(index): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    bulk(st, Some(index), peer, headers, body).await
}

/// One action of a bulk body and what became of it.
#[derive(Debug)]
enum Outcome {
    /// Index of the event in the outcome's events.
    Event(usize),
    /// Status, error type and reason.
    Failed(u16, &'static str, String),
}

/// Parses a bulk body into events, dead letters and one answer item per action.
pub fn parse_bulk(
    body: &[u8],
    default_index: Option<&str>,
    remote: &str,
    ctx: &SourceContext,
) -> (IngestOutcome, Vec<(String, String, u16, Value)>) {
    let peer = remote.parse::<SocketAddr>().map(|a| a.ip().to_string()).unwrap_or_else(|_| remote.trim().to_string());
    let source = format!("{} {remote}", crate::ingest::INPUT);
    let mut out = IngestOutcome::default();
    let mut actions: Vec<(String, String, Option<String>, Outcome)> = Vec::new();
    stats().bytes(body.len());
    let mut lines = body.split(|c| *c == b'\n').enumerate().filter(|(_, l)| !parse::trim_ascii(l).is_empty());
    while let Some((n, line)) = lines.next() {
        let line = parse::trim_ascii(line);
        let action: Map<String, Value> = match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(o)) if o.len() == 1 => o,
            other => {
                // Not an action line: the rest of the body cannot be paired any more.
                let why = match other {
                    Err(e) => format!("line {}: invalid action: {e}", n + 1),
                    Ok(_) => format!("line {}: an action is an object with one key (index, create, ...)", n + 1),
                };
                stats().received(1);
                out.dead_letters.push(DeadLetter::new(&source, ParseError::Json(why.clone()).to_string(), line));
                actions.push(("index".into(), String::new(), None, Outcome::Failed(400, "parse_exception", why)));
                break;
            }
        };
        let Some((op, meta)) = action.into_iter().next() else { break };
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| default_index.map(str::to_string))
            .unwrap_or_default();
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_string);
        match op.as_str() {
            "index" | "create" => {}
            "delete" => {
                actions.push((
                    op,
                    index,
                    id,
                    Outcome::Failed(404, "not_found", "documents are not stored here".into()),
                ));
                continue;
            }
            "update" => {
                let _ = lines.next();
                actions.push((
                    op,
                    index,
                    id,
                    Outcome::Failed(
                        400,
                        "action_request_validation_exception",
                        "update is not supported; use index or create".into(),
                    ),
                ));
                continue;
            }
            _ => {
                let why = format!("line {}: unknown action {op:?}", n + 1);
                actions.push((op, index, id, Outcome::Failed(400, "illegal_argument_exception", why)));
                break;
            }
        }
        let Some((sn, src)) = lines.next() else {
            let why = format!("line {}: action without a source line", n + 1);
            actions.push((op, index, id, Outcome::Failed(400, "action_request_validation_exception", why)));
            break;
        };
        stats().received(1);
        let src = parse::trim_ascii(src);
        let ctx_p = ParseContext {
            input: crate::ingest::INPUT,
            peer: Some(&peer),
            received: parse::receive_time(),
            local_offset_secs: ctx.local_offset_secs,
        };
        let result = match split_document(src, false).into_iter().next() {
            Some(Item::Value(v @ Value::Object(_))) => parse::json::parse_value(v, &ctx_p),
            Some(Item::Bad { error, .. }) => Err(error),
            _ => Err(ParseError::Json(format!("line {}: the source is not a JSON object", sn + 1))),
        };
        match result {
            Ok(mut ev) => {
                if let Some(log) = ev.log.as_mut()
                    && !index.is_empty()
                {
                    log.fields.insert("_index".into(), Value::String(index.clone()));
                }
                stamp(&mut ev, &ctx.sensor, ctx.segment.as_deref());
                out.events.push(ev);
                actions.push((op, index, id, Outcome::Event(out.events.len() - 1)));
            }
            Err(e) => {
                let reason = e.to_string();
                out.dead_letters.push(DeadLetter::new(&source, reason.clone(), src));
                actions.push((op, index, id, Outcome::Failed(400, "document_parsing_exception", reason)));
            }
        }
    }
    let items = actions
        .into_iter()
        .map(|(op, index, id, o)| match o {
            Outcome::Event(i) => {
                let eid = out.events[i].id.clone().unwrap_or_default();
                let id = id.unwrap_or(eid);
                let item = json!({"_index": index, "_id": id, "_version": 1, "result": "created", "status": 201,
                    "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": i, "_primary_term": 1});
                (op, index, 201, item)
            }
            Outcome::Failed(status, kind, reason) => {
                let item = json!({"_index": index, "_id": id, "status": status,
                    "error": {"type": kind, "reason": reason}});
                (op, index, status, item)
            }
        })
        .collect();
    (out, items)
}

async fn bulk(
    st: HttpState,
    index: Option<String>,
    peer: SocketAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let Ok(_slot) = st.slots.clone().try_acquire_owned() else {
        return busy();
    };
    let body = match body_bytes(&headers, &body, st.max_body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (outcome, items) = parse_bulk(&body, index.as_deref(), &peer.to_string(), &st.ctx);
    if let Err(e) = publish_outcome(st.bus.as_ref(), &outcome).await {
        tracing::warn!(error = %e, "bulk: bus unavailable");
        stats().dropped((outcome.events.len() + outcome.dead_letters.len()) as u64, "bus");
        return es_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable_shards_exception",
            format!("not accepted, retry later: {e}"),
        );
    }
    let errors = items.iter().any(|(_, _, s, _)| *s >= 300);
    let items: Vec<Value> = items.into_iter().map(|(op, _, _, item)| json!({ op: item })).collect();
    let took = started.elapsed().as_millis() as u64;
    (StatusCode::OK, Json(json!({"took": took, "errors": errors, "items": items}))).into_response()
}

async fn es_info() -> Json<Value> {
    Json(json!({
        "name": "canh-gac-collector",
        "cluster_name": "canh-gac",
        "cluster_uuid": "canh-gac-collector",
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "lucene_version": "9.8.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    }))
}

async fn es_head() -> StatusCode {
    StatusCode::OK
}

async fn es_license() -> Json<Value> {
    Json(json!({"license": {"status": "active", "type": "basic", "uid": "canh-gac", "issued_to": "canh-gac"}}))
}
