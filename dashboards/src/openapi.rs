//! The OpenAPI 3.0 document of the API, served at `GET /api/openapi.json`.

use axum::Json;
use serde_json::{Map, Value, json};

/// One route: method, path, summary, query parameters, request body schema name.
pub type Route = (&'static str, &'static str, &'static str, &'static [&'static str], Option<&'static str>);

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    ("post", "/api/login", "Sign in; sets the soc_session cookie", &[], Some("Login")),
    ("post", "/api/logout", "Sign out", &[], None),
    ("get", "/api/me", "The signed-in user", &[], None),
    ("get", "/api/openapi.json", "This document", &[], None),
    (
        "get",
        "/api/events",
        "Stored records",
        &["type", "since", "until", "segment", "sensor", "host", "ip", "flow_id", "community_id", "limit", "order"],
        None,
    ),
    ("get", "/api/stats", "Counts for the overview", &["since", "until", "segment"], None),
    ("get", "/api/search", "Query-language search (| count by field)", &["q", "since", "until", "limit"], None),
    (
        "get",
        "/api/alerts",
        "Alert queue",
        &[
            "since", "until", "severity", "rule", "segment", "sensor", "ip", "status", "sort", "order", "page",
            "per_page",
        ],
        None,
    ),
    ("get", "/api/alerts/{id}", "One alert with its raw record", &[], None),
    (
        "get",
        "/api/alerts/{id}/related",
        "Pivot: records of the same flow, host or IP",
        &["by", "since", "until", "limit"],
        None,
    ),
    ("post", "/api/alerts/{id}/actions", "Acknowledge, assign, escalate, close or suppress", &[], Some("AlertAction")),
    (
        "get",
        "/api/incidents",
        "Incidents",
        &["status", "severity", "segment", "since", "until", "page", "per_page"],
        None,
    ),
    ("get", "/api/incidents/{id}", "Incident with its forwarding records", &[], None),
    ("post", "/api/incidents/{id}/status", "Change the status", &[], Some("IncidentStatus")),
    ("post", "/api/incidents/{id}/assign", "Change the owner", &[], Some("IncidentAssign")),
    ("post", "/api/incidents/{id}/comments", "Add a comment", &[], Some("IncidentComment")),
    ("get", "/api/incidents/{id}/stix", "STIX 2.1 bundle forwarded for the incident (501: no forwarding)", &[], None),
    ("get", "/api/forwarding", "Latest forwarding state per incident", &[], None),
    ("get", "/api/sensors", "Health per sensor and collector", &["since"], None),
    ("get", "/api/audit", "Audit log (admin, auditor)", &["page", "per_page"], None),
    ("get", "/api/users", "Users (admin)", &[], None),
    ("post", "/api/users", "Create a user (admin)", &[], Some("User")),
    ("patch", "/api/users/{name}", "Update a user (admin)", &[], Some("User")),
    ("delete", "/api/users/{name}", "Delete a user (admin)", &[], None),
    ("get", "/healthz", "Process alive", &[], None),
    ("get", "/readyz", "Store reachable", &[], None),
    ("get", "/metrics", "Prometheus metrics", &[], None),
];

fn schemas() -> Value {
    let s = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required});
    let str_ = json!({"type": "string"});
    let segs = json!({"type": "array", "items": {"type": "string"}, "nullable": true});
    json!({
        "Login": s(json!({"username": str_, "password": str_}), &["username", "password"]),
        "Me": s(json!({"username": str_, "role": {"type": "string", "enum": ["admin", "analyst", "auditor"]},
            "segments": segs, "csrf_token": str_}), &["username", "role", "segments", "csrf_token"]),
        "Error": s(json!({"error": str_, "position": {"type": "integer"}}), &["error"]),
        "AlertAction": s(json!({
            "action": {"type": "string", "enum": ["acknowledge", "assign", "escalate", "close", "suppress"]},
            "assignee": str_, "verdict": {"type": "string", "enum": ["true_positive", "false_positive", "benign"]},
            "comment": str_, "incident_id": str_}), &["action"]),
        "IncidentStatus": s(json!({"status": {"type": "string",
            "enum": ["new", "acknowledged", "investigating", "resolved", "false_positive"]}, "comment": str_}), &["status"]),
        "IncidentAssign": s(json!({"owner": str_}), &["owner"]),
        "IncidentComment": s(json!({"text": str_}), &["text"]),
        "User": s(json!({"username": str_, "password": str_,
            "role": {"type": "string", "enum": ["admin", "analyst", "auditor"]}, "segments": segs}), &[]),
    })
}

/// Builds the document.
pub fn spec() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for (method, path, summary, params, body) in ROUTES {
        let mut parameters: Vec<Value> = params
            .iter()
            .map(|p| json!({"name": p, "in": "query", "required": *p == "q", "schema": {"type": "string"}}))
            .collect();
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(|c| c == '{' || c == '}');
            parameters.push(json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let open = matches!(*path, "/api/login" | "/api/openapi.json" | "/healthz" | "/readyz" | "/metrics");
        let mut responses = json!({
            "200": {"description": "OK", "content": {"application/json": {}}},
            "400": {"description": "Bad request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
        });
        if *path == "/api/login" || *path == "/api/me" {
            responses["200"] = json!({"description": "OK",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}});
        }
        if *path == "/api/login" {
            responses["401"] = json!({"description": "Bad credentials"});
            responses["429"] = json!({"description": "Too many failed logins"});
        }
        if !open {
            responses["401"] = json!({"description": "No session"});
            responses["403"] = json!({"description": "Role, CSRF token or scope refuses it"});
        }
        let mut op = json!({ "summary": summary, "parameters": parameters, "responses": responses });
        if open {
            op["security"] = json!([]);
        }
        if let Some(b) = body {
            op["requestBody"] = json!({"required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Canh Gác dashboard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sign in with POST /api/login; send the soc_session cookie, and on writes the \
                X-CSRF-Token header with the csrf_token of the login answer."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "soc_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"}
            }
        },
        "security": [{"session": []}],
    })
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}
